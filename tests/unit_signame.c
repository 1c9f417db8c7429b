/* signame: signal names as Node reports them. */
#include <signal.h>

#include "check.h"
#include "common/signame.h"

int main(void)
{
    CHECK_STR(sig_name(SIGTERM), "SIGTERM");
    CHECK_STR(sig_name(SIGKILL), "SIGKILL");
    CHECK_STR(sig_name(SIGINT), "SIGINT");
    CHECK_STR(sig_name(SIGPIPE), "SIGPIPE");
    CHECK_STR(sig_name(SIGSEGV), "SIGSEGV");
    CHECK_STR(sig_name(SIGCHLD), "SIGCHLD");
    CHECK(sig_name(0) == NULL);
    CHECK(sig_name(-1) == NULL);
    CHECK(sig_name(SIGRTMAX + 1) == NULL);
    CHECK(sig_name(1000) == NULL);

    CHECK_INT(sig_from_name("SIGTERM"), SIGTERM);
    CHECK_INT(sig_from_name("SIGKILL"), 9);
    CHECK_INT(sig_from_name("SIGHUP"), 1);
    CHECK_INT(sig_from_name("TERM"), -1); /* the prefix is required */
    CHECK_INT(sig_from_name("sigterm"), -1);
    CHECK_INT(sig_from_name("SIGTERM "), -1);
    CHECK_INT(sig_from_name(""), -1);
    CHECK_INT(sig_from_name("SIG"), -1);
    CHECK_INT(sig_from_name("SIGFOO"), -1);

    /* Every named signal goes both ways, and 1..31 all have names. */
    for (int sig = 1; sig < 32; sig++) {
        const char *name = sig_name(sig);
        CHECK(name != NULL);
        if (name) {
            CHECK(strncmp(name, "SIG", 3) == 0);
            CHECK_INT(sig_from_name(name), sig);
        }
    }

    CHECK_INT(sig_valid(0), 0);
    CHECK_INT(sig_valid(-1), 0);
    CHECK_INT(sig_valid(1), 1);
    CHECK_INT(sig_valid(SIGKILL), 1);
    CHECK_INT(sig_valid(SIGRTMIN), 1);
    CHECK_INT(sig_valid(SIGRTMAX), 1);
    CHECK_INT(sig_valid(SIGRTMAX + 1), 0);
    return check_status();
}
