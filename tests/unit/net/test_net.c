/* net: URL parsing as etcd accepts URLs, and real TCP and unix-socket
 * connections on one loop: echo, clean close both ways, refused connects,
 * a write queue that stays bounded when the peer never reads, and a
 * listener that keeps accepting after running out of memory. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "net/net.h"
#include "run_until.h"

static void url_parse_cases(void **state)
{
    (void)state;
    struct net_url u;
    struct cairn_errmsg m;
    assert_int_equal(net_url_parse("http://127.0.0.1:2379", &u, &m), 0);
    assert_int_equal(u.scheme, NET_SCHEME_HTTP);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 2379);
    assert_int_equal(net_url_parse(" https://[::1]:4001/ ", &u, &m), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 4001);
    assert_int_equal(net_url_parse("unix://localhost:12345", &u, &m), 0);
    assert_true(u.is_unix);
    assert_string_equal(u.host, "localhost:12345");
    assert_int_equal(net_url_parse("unixs:///run/etcd.sock", &u, &m), 0);
    assert_int_equal(u.scheme, NET_SCHEME_UNIXS);
    assert_string_equal(u.host, "/run/etcd.sock");
    assert_int_equal(net_url_parse("http://localhost:0", &u, &m), 0);
    assert_int_equal(u.port, 0);

    assert_int_equal(net_url_parse("127.0.0.1:2379", &u, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "no scheme"));
    assert_int_equal(net_url_parse("ftp://a:1", &u, &m), CAIRN_EINVAL);
    assert_non_null(
        strstr(m.text, "URL scheme must be http, https, unix, or unixs"));
    assert_int_equal(net_url_parse("http://host", &u, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "host:port"));
    assert_int_equal(net_url_parse("http://h:1/p", &u, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "path"));
    assert_int_equal(net_url_parse("http://h:65536", &u, &m), CAIRN_EINVAL);
    assert_int_equal(net_url_parse("http://h:", &u, &m), CAIRN_EINVAL);
    assert_int_equal(net_url_parse("http://::1:5", &u, &m), CAIRN_EINVAL);
    assert_int_equal(net_url_parse("http://[::1:5", &u, &m), CAIRN_EINVAL);
    assert_int_equal(net_url_parse("unix://", &u, &m), CAIRN_EINVAL);

    char out[300];
    assert_int_equal(net_url_parse("http://[::1]:7", &u, NULL), 0);
    net_url_format(&u, out, sizeof(out));
    assert_string_equal(out, "http://[::1]:7");
    assert_int_equal(net_url_parse("unix://a.sock", &u, NULL), 0);
    net_url_format(&u, out, sizeof(out));
    assert_string_equal(out, "unix://a.sock");
}

/* ---- a server that echoes, and a client that counts ---- */

struct side {
    struct net_conn *conn;
    struct buf got;
    int closed;
    int close_status;
    int drains;
    bool echo;
};

struct fixture {
    uv_loop_t loop;
    struct net_listener *l;
    struct side server;
    struct side client;
    int connect_status;
    int connects;
};

static void side_read(void *arg, struct net_conn *c, const uint8_t *d, size_t n)
{
    struct side *s = arg;
    assert_int_equal(buf_append(&s->got, d, n), 0);
    if (s->echo)
        assert_int_equal(net_conn_write(c, d, n), 0);
}
static void side_drain(void *arg, struct net_conn *c)
{
    (void)c;
    ((struct side *)arg)->drains++;
}
static void side_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    struct side *s = arg;
    s->closed++;
    s->close_status = status;
    s->conn = NULL;
}
static const struct net_conn_cbs side_cbs = {side_read, side_drain,
                                             side_closed};

static void on_accept(void *arg, struct net_conn *c)
{
    struct fixture *f = arg;
    f->server.conn = c;
    net_conn_start(c, &side_cbs, &f->server);
}

static void on_connected(void *arg, int status, struct net_conn *c)
{
    struct fixture *f = arg;
    f->connects++;
    f->connect_status = status;
    if (status == 0) {
        f->client.conn = c;
        net_conn_start(c, &side_cbs, &f->client);
    }
}

static void fixture_open(struct fixture *f, const char *url_text,
                         const struct net_conn_config *cfg)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct net_url url;
    struct cairn_errmsg m;
    assert_int_equal(net_url_parse(url_text, &url, &m), 0);
    assert_int_equal(
        net_listener_open(&f->loop, &url, cfg, NULL, &f->l, f, on_accept, &m),
        0);
    if (!url.is_unix) {
        assert_true(net_listener_port(f->l) != 0);
        url.port = net_listener_port(f->l);
    }
    f->server.echo = true;
    assert_int_equal(net_connect(&f->loop, &url, cfg, f, on_connected), 0);
    RUN_UNTIL(f, f->connects == 1 && f->server.conn != NULL);
    assert_int_equal(f->connect_status, 0);
}

static void fixture_close(struct fixture *f)
{
    if (f->l)
        net_listener_close(f->l);
    if (f->client.conn)
        net_conn_close(f->client.conn, false);
    if (f->server.conn)
        net_conn_close(f->server.conn, false);
    LOOP_DRAIN(&f->loop);
    assert_int_equal(ru_loop_close(&f->loop), 0);
    buf_free(&f->server.got);
    buf_free(&f->client.got);
}

static void echo_over(const char *url)
{
    struct fixture f;
    fixture_open(&f, url, NULL);
    assert_string_equal(net_conn_type_name(f.client.conn),
                        strncmp(url, "unix", 4) == 0 ? "unix" : "tcp");
    uint8_t msg[100000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    assert_int_equal(net_conn_write(f.client.conn, msg, sizeof(msg)), 0);
    /* What the socket did not take at once was queued: drain follows. */
    bool queued = net_conn_queued_bytes(f.client.conn) > 0;
    RUN_UNTIL(&f, f.client.got.len == sizeof(msg));
    assert_memory_equal(f.client.got.data, msg, sizeof(msg));
    if (queued)
        assert_true(f.client.drains >= 1);
    else
        assert_int_equal(f.client.drains, 0);
    /* the client closes; the server sees end of stream (status 0) */
    net_conn_close(f.client.conn, true);
    RUN_UNTIL(&f, f.server.closed == 1 && f.client.closed == 1);
    assert_int_equal(f.server.close_status, 0);
    assert_int_equal(f.client.close_status, CAIRN_ECANCELED);
    fixture_close(&f);
}

static void tcp_echo(void **state)
{
    (void)state;
    echo_over("http://127.0.0.1:0");
}

static void unix_echo(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "unix://cairn-test-net-%d.sock", (int)getpid());
    echo_over(url);
    /* closing the listener removed the socket file */
    assert_int_not_equal(access(url + 7, F_OK), 0);
}

static void stale_unix_socket_replaced(void **state)
{
    (void)state;
    char path[64], url[80];
    snprintf(path, sizeof(path), "cairn-test-net-stale-%d.sock", (int)getpid());
    snprintf(url, sizeof(url), "unix://%s", path);
    /* what a crashed member leaves behind */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    echo_over(url);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void ipv6_and_localhost(void **state)
{
    (void)state;
    echo_over("http://localhost:0");
    /* IPv6 loopback, where the machine has it */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct net_url u;
    assert_int_equal(net_url_parse("http://[::1]:0", &u, NULL), 0);
    struct net_listener *l;
    int rv = net_listener_open(&loop, &u, NULL, NULL, &l, NULL, NULL, NULL);
    if (rv == 0)
        net_listener_close(l);
    LOOP_DRAIN(&loop);
    assert_int_equal(ru_loop_close(&loop), 0);
    if (rv != 0)
        return; /* no ::1 here */
    echo_over("http://[::1]:0");
}

static void connect_refused(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, "http://127.0.0.1:0", NULL);
    struct net_url url;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &url, NULL), 0);
    url.port = net_listener_port(f.l);
    net_listener_close(f.l);
    f.l = NULL;
    uv_run(&f.loop, UV_RUN_NOWAIT);
    int before = f.connects;
    assert_int_equal(net_connect(&f.loop, &url, NULL, &f, on_connected), 0);
    /* the callback never runs from inside net_connect */
    assert_int_equal(f.connects, before);
    RUN_UNTIL(&f, f.connects == before + 1);
    assert_true(f.connect_status < 0);
    /* names are not resolved on the loop; https needs a TLS context */
    assert_int_equal(net_url_parse("http://example.invalid:1", &url, NULL), 0);
    assert_int_equal(net_connect(&f.loop, &url, NULL, &f, on_connected),
                     CAIRN_EINVAL);
    assert_int_equal(net_url_parse("https://127.0.0.1:1", &url, NULL), 0);
    assert_int_equal(net_connect(&f.loop, &url, NULL, &f, on_connected),
                     CAIRN_EUNSUPPORTED);
    fixture_close(&f);
}

static void listen_errors(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, "http://127.0.0.1:0", NULL);
    struct net_url url;
    struct net_listener *l2 = NULL;
    struct cairn_errmsg m;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &url, NULL), 0);
    url.port = net_listener_port(f.l);
    assert_int_equal(
        net_listener_open(&f.loop, &url, NULL, NULL, &l2, &f, on_accept, &m),
        CAIRN_EBUSY);
    assert_non_null(strstr(m.text, "listen http://127.0.0.1:"));
    assert_int_equal(net_url_parse("unixs://x.sock", &url, NULL), 0);
    assert_int_equal(
        net_listener_open(&f.loop, &url, NULL, NULL, &l2, &f, on_accept, &m),
        CAIRN_EUNSUPPORTED);
    fixture_close(&f);
}

/* A write on a connection with nothing queued goes to the socket at once:
 * nothing is left queued (no copy, no queued request, no extra loop turn
 * for its completion), and the bytes arrive. */
static void idle_write_goes_direct(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, "http://127.0.0.1:0", NULL);
    f.server.echo = false;
    uint64_t before = net_conn_direct_writes(f.client.conn);
    assert_int_equal(net_conn_write(f.client.conn, "hello", 5), 0);
    assert_int_equal(net_conn_queued_bytes(f.client.conn), 0);
    assert_int_equal(net_conn_direct_writes(f.client.conn), before + 1);
    RUN_UNTIL(&f, f.server.got.len == 5);
    assert_memory_equal(f.server.got.data, "hello", 5);
    assert_int_equal(f.client.drains, 0);
    fixture_close(&f);
}

static void write_queue_bounded(void **state)
{
    (void)state;
    struct net_conn_config cfg = {.write_queue_max_bytes = 256 << 10};
    struct fixture f;
    fixture_open(&f, "http://127.0.0.1:0", &cfg);
    f.server.echo = false;
    /* the client never reads: the server's queue fills, then refuses */
    net_conn_read_pause(f.client.conn, true);
    static uint8_t chunk[16384];
    size_t written = 0;
    int rv = 0;
    for (int i = 0; i < 100000; i++) {
        rv = net_conn_write(f.server.conn, chunk, sizeof(chunk));
        if (rv == CAIRN_EFULL) {
            /* let the kernel take what it will, then try again */
            uv_run(&f.loop, UV_RUN_NOWAIT);
            if (net_conn_write_room(f.server.conn) < sizeof(chunk) &&
                net_conn_queued_bytes(f.server.conn) > 0 && i > 64)
                break;
            continue;
        }
        assert_int_equal(rv, 0);
        written += sizeof(chunk);
    }
    assert_int_equal(rv, CAIRN_EFULL);
    assert_true(net_conn_queued_bytes(f.server.conn) <=
                cfg.write_queue_max_bytes);
    /* reading again drains it all */
    net_conn_read_pause(f.client.conn, false);
    RUN_UNTIL(&f, f.client.got.len == written);
    RUN_UNTIL(&f, net_conn_queued_bytes(f.server.conn) == 0);
    assert_true(f.server.drains >= 1);
    /* a hard close from the server is seen by the client as end of stream */
    net_conn_close(f.server.conn, false);
    assert_int_equal(net_conn_write(f.server.conn, chunk, 1), CAIRN_ESHUTDOWN);
    RUN_UNTIL(&f, f.client.closed == 1 && f.server.closed == 1);
    assert_int_equal(f.client.close_status, 0);
    fixture_close(&f);
}

/* Connects with a blocking socket, outside the loop: the kernel completes it
 * from the listen backlog, so the only allocations on the loop are the
 * listener's. Returns the fd. */
static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* An allocation failure while accepting pauses the listener; it must resume
 * and accept that connection and later ones, not stop accepting for good. */
static void accept_recovers_from_oom(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f, "http://127.0.0.1:0", NULL);
    uint16_t port = net_listener_port(f.l);
    net_conn_close(f.server.conn, false);
    RUN_UNTIL(&f, f.server.conn == NULL && f.client.conn == NULL);
    for (int fails = 1; fails <= 3; fails++) {
        int fd = raw_connect(port);
        /* the next `fails` allocations fail: the first accept attempts */
        cairn_mem_fault_set(0, fails);
        RUN_UNTIL(&f, f.server.conn != NULL);
        cairn_mem_fault_set(-1, 0);
        net_conn_close(f.server.conn, false);
        RUN_UNTIL(&f, f.server.conn == NULL);
        close(fd);
    }
    /* and a plain connection afterwards */
    int fd = raw_connect(port);
    RUN_UNTIL(&f, f.server.conn != NULL);
    close(fd);
    fixture_close(&f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as net.h asks of every program */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_parse_cases),
        cmocka_unit_test(tcp_echo),
        cmocka_unit_test(unix_echo),
        cmocka_unit_test(stale_unix_socket_replaced),
        cmocka_unit_test(ipv6_and_localhost),
        cmocka_unit_test(connect_refused),
        cmocka_unit_test(listen_errors),
        cmocka_unit_test(idle_write_goes_direct),
        cmocka_unit_test(write_queue_bounded),
        cmocka_unit_test(accept_recovers_from_oom),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
