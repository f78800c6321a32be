# Helpers shared by every module's CMakeLists.txt.

# Warnings for our own code only; generated code gets its own flags.
set(CAIRN_WARNINGS -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes)

# cairn_module(NAME SOURCES... [DEPS dep...])
# One static library per module, cairn_NAME. DEPS are exactly the modules and
# imported libraries DESIGN.md allows it to use; headers are included as
# "module/module.h" from src/.
function(cairn_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(cairn_${name} STATIC ${M_SOURCES})
  target_include_directories(cairn_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(cairn_${name} PRIVATE ${CAIRN_WARNINGS})
  if(CAIRN_FAULTS)
    target_compile_definitions(cairn_${name} PUBLIC CAIRN_FAULTS=1)
  endif()
  if(M_DEPS)
    target_link_libraries(cairn_${name} PUBLIC ${M_DEPS})
  endif()
endfunction()

# cairn_unit_test(NAME SOURCES... DEPS dep... [LABELS l...] [TIMEOUT s])
# A cmocka test program registered with CTest (label "unit" by default).
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
function(cairn_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(test_${name} ${T_SOURCES})
  target_compile_options(test_${name} PRIVATE ${CAIRN_WARNINGS})
  # tests/unit holds what the test programs share (run_until.h)
  target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(test_${name} PRIVATE ${T_DEPS} PkgConfig::CMOCKA)
  set_target_properties(test_${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND test_${name})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()

# cairn_program(NAME SOURCES... DEPS dep...): a binary in build/bin/.
function(cairn_program name)
  cmake_parse_arguments(P "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${P_SOURCES})
  target_compile_options(${name} PRIVATE ${CAIRN_WARNINGS})
  target_link_libraries(${name} PRIVATE ${P_DEPS})
endfunction()
