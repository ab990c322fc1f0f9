# edge_generate_proto(OUT_VAR PROTO_ROOT MESSAGES|SERVICES|BOTH files...)
# Runs protoc on `files` relative to PROTO_ROOT: MESSAGES generates the
# message classes, SERVICES only the gRPC service code (so that one target
# can hold the messages and another the stubs), BOTH both; output goes to
# ${CMAKE_CURRENT_BINARY_DIR}/gen and OUT_VAR lists the generated sources.
function(edge_generate_proto out_var proto_root mode)
  set(gen_dir ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${gen_dir})
  set(outputs)
  foreach(rel ${ARGN})
    get_filename_component(dir ${rel} DIRECTORY)
    get_filename_component(name ${rel} NAME_WE)
    if(dir)
      set(base ${gen_dir}/${dir}/${name})
    else()
      set(base ${gen_dir}/${name})
    endif()
    set(files)
    set(args)
    if(NOT mode STREQUAL "SERVICES")
      list(APPEND files ${base}.pb.cc ${base}.pb.h)
      list(APPEND args --cpp_out=${gen_dir})
    endif()
    if(NOT mode STREQUAL "MESSAGES")
      list(APPEND files ${base}.grpc.pb.cc ${base}.grpc.pb.h)
      list(APPEND args --grpc_out=${gen_dir}
                       --plugin=protoc-gen-grpc=${EDGE_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${files}
      COMMAND protobuf::protoc -I${proto_root} ${args} ${proto_root}/${rel}
      DEPENDS ${proto_root}/${rel} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    list(APPEND outputs ${files})
  endforeach()
  set(${out_var} ${outputs} PARENT_SCOPE)
endfunction()
