/* cairn-transport-dump: prints one captured direction of a peer connection
 * (docs/transport.md) as text, e.g. from tcpdump's "follow stream" raw. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "transport/transport_int.h"

/* Captures larger than this are refused rather than read whole. */
#define DUMP_BYTES_MAX ((size_t)1 << 30)

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--help") == 0)) {
        fprintf(stderr, "usage: cairn-transport-dump [FILE]\n"
                        "  decodes one direction of a cairn peer "
                        "connection (stdin without FILE)\n");
        return 2;
    }
    FILE *in = stdin;
    if (argc == 2) {
        in = fopen(argv[1], "rb");
        if (in == NULL) {
            fprintf(stderr, "cairn-transport-dump: %s: %s\n", argv[1],
                    strerror(errno));
            return 1;
        }
    }
    struct buf b = BUF_INIT;
    int rv = 0;
    for (;;) {
        if (b.len >= DUMP_BYTES_MAX) {
            fprintf(stderr, "cairn-transport-dump: capture over 1 GiB\n");
            rv = 1;
            break;
        }
        uint8_t *p = buf_extend(&b, 64 << 10);
        if (p == NULL) {
            fprintf(stderr, "cairn-transport-dump: out of memory\n");
            rv = 1;
            break;
        }
        size_t n = fread(p, 1, 64 << 10, in);
        b.len -= (64 << 10) - n;
        if (n == 0)
            break;
    }
    if (in != stdin)
        fclose(in);
    if (rv == 0 && tp__dump(stdout, b.data, b.len) != 0)
        rv = 1;
    buf_free(&b);
    return rv;
}
