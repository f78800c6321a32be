/* gateway: etcd's grpc-gateway on the client port (POST /v3/... and the
 * deprecated /v3beta/... with JSON bodies), private to api/. Like etcd's,
 * it is a gRPC client of this same server: each HTTP request becomes a
 * call on one loopback HTTP/2 connection, so every service, limit
 * (--max-concurrent-streams included) and error is exactly the gRPC
 * one's. */
#ifndef CAIRN_API_GATEWAY_H
#define CAIRN_API_GATEWAY_H

#include "api/api_int.h"

/* ---- JSON <-> protobuf-c (gateway_json.c), grpc-gateway's JSONPb ---- */

/* Reads one JSON object of message type d from json (len bytes) into a
 * message allocated in arena (every pointer in it too: never free it with
 * protobuf-c). *used: bytes consumed (whitespace included). Returns 0,
 * CAIRN_EAGAIN when only whitespace is left, CAIRN_EMALFORMED with a reason
 * in err, CAIRN_ENOMEM. */
int api__json_read(const ProtobufCMessageDescriptor *d, const uint8_t *json,
                   size_t len, size_t *used, struct api_arena *arena,
                   ProtobufCMessage **out, char *err, size_t err_len);
/* Appends m as JSON. 0 or CAIRN_ENOMEM. */
int api__json_write(const ProtobufCMessage *m, struct buf *out);
/* Appends s as a JSON string. */
int api__json_quote(struct buf *out, const char *s);

/* ---- the gateway (gateway.c) ---- */

struct api__gw;
/* NULL when out of memory. */
struct api__gw *api__gw_new(struct api *a);
/* The api listens on url (port bound): the first plain one is where the
 * gateway connects. */
void api__gw_listened(struct api__gw *g, const struct net_url *url,
                      uint16_t port);
/* An HTTP/1.1 request: false when its path is not the gateway's. */
bool api__gw_request(struct api__gw *g, struct rpc_http1_request *req);
/* rpc's cancel and writable for a request: false when not the gateway's. */
bool api__gw_cancel(struct api__gw *g, struct rpc_http1_request *req);
bool api__gw_writable(struct api__gw *g, struct rpc_http1_request *req);
/* With the api: ends the loopback connection; memory goes once nothing is
 * owed. */
void api__gw_close(struct api__gw *g);

#endif
