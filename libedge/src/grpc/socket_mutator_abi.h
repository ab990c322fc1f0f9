// gRPC's socket mutator, as laid out in gRPC 1.51's
// src/core/lib/iomgr/socket_mutator.h.
//
// Public headers declare only the opaque `grpc_socket_mutator` and the
// channel argument that carries it (GRPC_ARG_SOCKET_MUTATOR, set with
// grpc::ChannelArguments::SetSocketMutator); the structure gRPC calls
// through is in a header Debian does not install. These declarations match
// it field for field; checked against Debian's libgrpc 1.51.1, whose
// grpc_socket_mutator_mutate_fd reads mutate_fd_2 at offset 24 of the
// vtable, passes {fd, usage} and uses usage 2 for accepted connections.
// The layout is unchanged in later gRPC releases.
#ifndef EDGE_SRC_GRPC_SOCKET_MUTATOR_ABI_H_
#define EDGE_SRC_GRPC_SOCKET_MUTATOR_ABI_H_

#include <grpc/grpc.h>
#include <grpc/support/sync.h>
#include <grpcpp/version_info.h>

#include <cstddef>

#if GRPC_CPP_VERSION_MAJOR != 1 || GRPC_CPP_VERSION_MINOR < 51
#error "socket_mutator_abi.h mirrors gRPC >= 1.51; check the layout for this version"
#endif

typedef enum {
  GRPC_FD_CLIENT_CONNECTION_USAGE,
  GRPC_FD_SERVER_LISTENER_USAGE,
  GRPC_FD_SERVER_CONNECTION_USAGE,
} grpc_fd_usage;

typedef struct {
  int fd;
  grpc_fd_usage usage;
} grpc_mutate_socket_info;

struct grpc_socket_mutator_vtable {
  // Used only when mutate_fd_2 is null (never here).
  bool (*mutate_fd)(int fd, grpc_socket_mutator* mutator);
  int (*compare)(grpc_socket_mutator* a, grpc_socket_mutator* b);
  // Called when the last reference goes.
  void (*destroy)(grpc_socket_mutator* mutator);
  // Called for every socket gRPC makes with the mutator in its arguments:
  // false fails that socket's use (see descriptor_reserve.h for what gRPC
  // 1.51 then does to a listener).
  bool (*mutate_fd_2)(const grpc_mutate_socket_info* info, grpc_socket_mutator* mutator);
};

struct grpc_socket_mutator {
  const grpc_socket_mutator_vtable* vtable;
  gpr_refcount refcount;
};

static_assert(offsetof(grpc_socket_mutator_vtable, mutate_fd_2) == 3 * sizeof(void*),
              "gRPC reads mutate_fd_2 as the vtable's fourth pointer");

#endif  // EDGE_SRC_GRPC_SOCKET_MUTATOR_ABI_H_
