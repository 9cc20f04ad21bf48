# etcd's gRPC API: its .proto files are Debian's (golang-etcd-server-dev,
# with gogo.proto from golang-github-gogo-protobuf-dev and
# google/api/annotations.proto from golang-github-gogo-googleapis-dev),
# generated here at build time into kvctl_etcdpb, a library of its own
# built once; lib/grpc (kvctl_grpc) is the face that serves them.
#
# gRPC, protobuf and abseil are linked from their static archives (Debian
# ships both kinds): their shared builds are about fifty libraries (abseil
# alone is forty), whose loading took every kvctl command's start from 25
# to 45 ms (`kvctl version`, perf stat); static, it is 25 ms again. OpenSSL
# and zlib stay shared, as the rest of kvctl uses them.
pkg_check_modules(GRPC_STACK REQUIRED grpc++ protobuf)
set(GRPC_STACK_ARCHIVES)
set(GRPC_STACK_SHARED)
foreach(name ${GRPC_STACK_STATIC_LIBRARIES})
  if(name MATCHES "^(ssl|crypto|z|rt|atomic|dl|m|pthread)$")
    list(APPEND GRPC_STACK_SHARED ${name})
  else()
    find_library(GRPC_STACK_ARCHIVE_${name} NAMES lib${name}.a)
    if(NOT GRPC_STACK_ARCHIVE_${name})
      message(FATAL_ERROR "lib${name}.a, a static archive of gRPC's, is missing: apt-get install libgrpc++-dev "
                          "(scripts/deps.sh installs it)")
    endif()
    list(APPEND GRPC_STACK_ARCHIVES ${GRPC_STACK_ARCHIVE_${name}})
  endif()
endforeach()
list(REMOVE_DUPLICATES GRPC_STACK_ARCHIVES)
list(REMOVE_DUPLICATES GRPC_STACK_SHARED)
add_library(kvctl_grpc_stack INTERFACE)
target_include_directories(kvctl_grpc_stack SYSTEM INTERFACE ${GRPC_STACK_INCLUDE_DIRS})
# One group: the archives refer to each other in every direction.
target_link_libraries(kvctl_grpc_stack INTERFACE -Wl,--start-group ${GRPC_STACK_ARCHIVES} -Wl,--end-group
                      ${GRPC_STACK_SHARED} Threads::Threads)
find_program(PROTOC protoc)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin)
if(NOT PROTOC OR NOT GRPC_CPP_PLUGIN)
  message(FATAL_ERROR "protoc and grpc_cpp_plugin are needed for etcd's gRPC API: "
                      "apt-get install protobuf-compiler protobuf-compiler-grpc (scripts/deps.sh installs them)")
endif()

set(GOCODE_SRC /usr/share/gocode/src)
# Import roots, as the .proto files name each other: "etcd/mvcc/...",
# "gogoproto/gogo.proto", "google/api/annotations.proto".
set(ETCD_PROTO_ROOTS ${GOCODE_SRC}/go.etcd.io ${GOCODE_SRC}/github.com/gogo/protobuf
                     ${GOCODE_SRC}/github.com/gogo/googleapis)
set(ETCD_PROTOS etcd/etcdserver/etcdserverpb/rpc.proto etcd/mvcc/mvccpb/kv.proto etcd/auth/authpb/auth.proto
                gogoproto/gogo.proto google/api/annotations.proto google/api/http.proto)
set(ETCD_PROTO_PACKAGES
    "etcd/=golang-etcd-server-dev" "gogoproto/=golang-github-gogo-protobuf-dev"
    "google/=golang-github-gogo-googleapis-dev")

set(ETCDPB_DIR ${CMAKE_CURRENT_BINARY_DIR}/etcdpb)
set(ETCDPB_SOURCES)
set(ETCDPB_INPUTS)
foreach(proto ${ETCD_PROTOS})
  set(found "")
  foreach(root ${ETCD_PROTO_ROOTS})
    if(NOT found AND EXISTS ${root}/${proto})
      set(found ${root}/${proto})
    endif()
  endforeach()
  if(NOT found)
    foreach(pair ${ETCD_PROTO_PACKAGES})
      string(REPLACE "=" ";" pair_list ${pair})
      list(GET pair_list 0 stem)
      list(GET pair_list 1 package)
      if(proto MATCHES "^${stem}")
        message(FATAL_ERROR "etcd's ${proto} is missing from ${GOCODE_SRC}: apt-get install ${package} "
                            "(scripts/deps.sh installs it)")
      endif()
    endforeach()
  endif()
  list(APPEND ETCDPB_INPUTS ${found})
  string(REGEX REPLACE "\\.proto$" "" stem ${proto})
  list(APPEND ETCDPB_SOURCES ${ETCDPB_DIR}/${stem}.pb.cc)
endforeach()
list(APPEND ETCDPB_SOURCES ${ETCDPB_DIR}/etcd/etcdserver/etcdserverpb/rpc.grpc.pb.cc)

set(ETCD_PROTO_INCLUDES)
foreach(root ${ETCD_PROTO_ROOTS})
  list(APPEND ETCD_PROTO_INCLUDES -I${root})
endforeach()
add_custom_command(
  OUTPUT ${ETCDPB_SOURCES}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${ETCDPB_DIR}
  COMMAND ${PROTOC} ${ETCD_PROTO_INCLUDES} -I/usr/include --cpp_out=${ETCDPB_DIR} ${ETCD_PROTOS}
  COMMAND ${PROTOC} ${ETCD_PROTO_INCLUDES} -I/usr/include --grpc_out=${ETCDPB_DIR}
          --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN} etcd/etcdserver/etcdserverpb/rpc.proto
  DEPENDS ${ETCDPB_INPUTS}
  COMMENT "Generating C++ from etcd's .proto files"
  VERBATIM)
add_library(kvctl_etcdpb STATIC ${ETCDPB_SOURCES})
# Generated code: its headers are included as system headers, and its own
# warnings are not ours to fix.
target_include_directories(kvctl_etcdpb SYSTEM PUBLIC ${ETCDPB_DIR})
target_compile_options(kvctl_etcdpb PRIVATE -w)
target_link_libraries(kvctl_etcdpb PUBLIC kvctl_grpc_stack)

file(GLOB GRPC_SOURCES CONFIGURE_DEPENDS lib/grpc/*.cpp)
add_library(kvctl_grpc STATIC ${GRPC_SOURCES})
target_link_libraries(kvctl_grpc PUBLIC kvctl_etcd kvctl_etcdpb)
