/* cairn_flags: etcd's command-line flags and ETCD_* environment variables
 * for the `cairn` program, parsed into a server configuration (private to
 * src/cmd; docs/flags.md lists every flag and whether it is supported).
 *
 * Syntax as Go's flag package, which etcd uses: "-name value",
 * "--name value", "-name=value", "--name=value"; a boolean flag takes no
 * separate value ("--x" or "--x=false"); parsing stops at "--" or at the
 * first argument that is not a flag, which etcd then refuses. A flag not
 * given on the command line takes the value of ETCD_<NAME> (upper case, '-'
 * as '_') when that is set and not empty; an ETCD_ variable naming a flag
 * also given on the command line is refused, as etcd refuses it. */
#ifndef CAIRN_CMD_CAIRN_FLAGS_H
#define CAIRN_CMD_CAIRN_FLAGS_H

#include <stdbool.h>
#include <stdio.h>

#include "server/server.h"

struct cairn_flags {
    struct server_config config; /* strings point into argv, envp or below */
    bool print_version;          /* --version */
    bool print_help;             /* --help, -h */
    char data_dir_buf[SERVER_NAME_LEN_MAX + 8];
    char initial_cluster_buf[SERVER_URLS_MAX *
                             (SERVER_NAME_LEN_MAX + SERVER_URL_LEN_MAX + 2)];
    /* Warnings to print (an unrecognized ETCD_ variable), one per line. */
    char warnings[1024];
};

/* Parses argv[1..argc) and envp (NULL-terminated "NAME=value" strings) into
 * f. Returns 0, or CAIRN_EINVAL (an unknown flag, a bad value, a value the
 * flag cannot take), or CAIRN_EUNSUPPORTED (a flag cairn accepts but does
 * not implement yet, given a value other than its default), the reason in
 * m. argv and envp must outlive f. */
int cairn_flags_parse(int argc, char **argv, char **envp, struct cairn_flags *f,
                      struct cairn_errmsg *m);

/* Prints what --help shows: every flag but hidden test-only ones. */
void cairn_flags_usage(FILE *out);

#endif
