/* proto: the public header of the etcd v3 wire types. It includes the code
 * protoc-c generates at build time from this folder's .proto files (never
 * committed), so users write `#include "proto/proto.h"` and get
 * Etcdserverpb__RangeRequest, Mvccpb__KeyValue, V3lockpb__LockRequest and the
 * rest, with protobuf-c's pack/unpack functions.
 *
 * Ownership follows protobuf-c: *_unpack() returns a message the caller frees
 * with *_free_unpacked(); packing writes into caller-owned memory of
 * *_get_packed_size() bytes. The code keeps no global mutable state and may
 * be used from any thread. */
#ifndef CAIRN_PROTO_PROTO_H
#define CAIRN_PROTO_PROTO_H

#include "proto/auth.pb-c.h"
#include "proto/kv.pb-c.h"
#include "proto/rpc.pb-c.h"
#include "proto/v3election.pb-c.h"
#include "proto/v3lock.pb-c.h"

#endif
