# cairn: the two commands are `make run` and `make test`; everything else is
# for developers. CMake + Ninja do the building; this file only drives them.

BUILD      ?= build
ASAN_BUILD ?= build-asan
CMAKE_GEN  := -G Ninja
JOBS       ?= 2

.PHONY: all build asan run test test-fast bench format lint clean deps

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug \
	      -DCAIRN_SANITIZE=ON -DCAIRN_FAULTS=ON

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The main program. Until the member binary exists it is the deterministic
# cluster simulator running a short campaign (see README's status table).
RUN_ARGS ?=
run: build
	scripts/run-main.sh $(BUILD) $(RUN_ARGS)

# Every test: the normal build runs all labels; the sanitizer build runs the
# unit and simulation tests.
test: build asan
	@scripts/deps.sh compat
	scripts/run-tests.sh $(BUILD) "$(ASAN_BUILD):^(unit|sim)$$"

test-fast: build
	@scripts/deps.sh compat
	scripts/run-tests.sh $(BUILD)

bench: build
	@set -e; found=0; for b in $(BUILD)/bin/bench-*; do \
	  [ -x "$$b" ] || continue; found=1; echo "== $$b"; "$$b"; done; \
	  [ $$found -eq 1 ] || echo "no benchmark programs built yet"

format: deps
	@scripts/deps.sh lint
	find src tests bench -name '*.[ch]' -print0 | xargs -0 -r clang-format -i

lint: build
	@scripts/deps.sh lint
	scripts/lint.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
