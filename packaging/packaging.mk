# Installation and distribution (issue 10), included by the top-level Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   header, libmedinfer.so.<ABI>.X.Y.Z + SONAME
#                          symlinks, lib/pkgconfig/medinfer.pc, lib/cmake/MedInfer/
#   make uninstall [PREFIX=...] [DESTDIR=]        removes exactly what install put there
#   make wheel             dist/medinfer-X.Y.Z-py3-none-linux_<arch>.whl (the .so inside)
#   make dist              dist/: source tarball (git archive HEAD), binary tarball, wheel,
#                          SHA256SUMS
#   make abi-check         exported symbols vs include/medinfer.symbols and the header
#   make dist-test         the above against temporary prefixes: pkg-config C build,
#                          CMake C++ build, wheel in a fresh virtualenv (run by make test)
#
# One source of truth for the version: the VERSION file. version-check compares it with
# medinfer_version() of the built library (and the ABI version with the SONAME's).

MEDINFER_VERSION := $(shell cat VERSION)
MEDINFER_ABI     := $(shell sed -n 's/^\#define MEDINFER_ABI_VERSION \([0-9]*\).*/\1/p' include/medinfer.h)
MEDINFER_SONAME  := libmedinfer.so.$(MEDINFER_ABI)
# The file's name: the SONAME plus the release (libmedinfer.so.1.0.1.0 for ABI 1, 0.1.0).
MEDINFER_REAL    := $(MEDINFER_SONAME).$(MEDINFER_VERSION)
MEDINFER_ARCH    := $(shell uname -m)

PREFIX     ?= /usr/local
DESTDIR    ?=
INSTALL    ?= install
PKG_BUILD  := .build/packaging
DIST_DIR   ?= dist
BIN_NAME   := medinfer-$(MEDINFER_VERSION)-linux-$(MEDINFER_ARCH)
PKG_DEPS_STAMP := $(VENV)/.medinfer-packaging-deps

_inc   = $(DESTDIR)$(PREFIX)/include
_lib   = $(DESTDIR)$(PREFIX)/lib
_pc    = $(_lib)/pkgconfig
_cmake = $(_lib)/cmake/MedInfer

$(LIB):
	@echo "$(LIB) is missing: run make lib first" >&2; exit 1

.PHONY: install uninstall version-check abi-check wheel dist dist-test packaging-deps

$(PKG_BUILD)/print_version: packaging/print_version.c include/medinfer.h $(LIB)
	@mkdir -p $(@D)
	$(CC) -std=c99 -O2 -Wall -Wextra -Werror -Iinclude $< -L$(LIB_DIR) -lmedinfer -Wl,-rpath,'$$ORIGIN/../release' -o $@

# VERSION, the built library, the Swift constant it comes from and the Python package agree.
version-check: $(PKG_BUILD)/print_version
	@got="$$($(PKG_BUILD)/print_version)" || { echo "version-check: $(PKG_BUILD)/print_version failed ('$$got'): the library's ABI version differs from the header's, or $(LIB_DIR)/$(MEDINFER_SONAME) is missing (make lib creates it)" >&2; exit 1; }; \
	want="$(MEDINFER_VERSION) $(MEDINFER_ABI)"; \
	if [ "$$got" != "$$want" ]; then \
	    echo "version-check: libmedinfer.so reports '$$got' (version ABI), VERSION and medinfer.h say '$$want';" >&2; \
	    echo "  update VERSION, libraryVersion in Sources/MedInfer/LibraryAPI.swift and __version__ in python/medinfer/__init__.py together" >&2; \
	    exit 1; fi; \
	soname=$$(readelf -d $(LIB) | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
	if [ "$$soname" != "$(MEDINFER_SONAME)" ]; then \
	    echo "version-check: SONAME of $(LIB) is '$$soname', expected $(MEDINFER_SONAME) (MEDINFER_ABI_VERSION $(MEDINFER_ABI))" >&2; exit 1; fi; \
	py=$$(sed -n 's/^__version__ = "\(.*\)"/\1/p' python/medinfer/__init__.py); \
	if [ "$$py" != "$(MEDINFER_VERSION)" ]; then \
	    echo "version-check: python/medinfer/__init__.py says __version__ = '$$py', VERSION says $(MEDINFER_VERSION)" >&2; exit 1; fi; \
	echo "version-check: $(MEDINFER_VERSION), SONAME $(MEDINFER_SONAME)"

abi-check: lib
	packaging/check_abi.sh $(LIB)

# install does not build (a packager's `sudo make install` must not run swift build as root).
install: version-check
	$(INSTALL) -d $(_inc) $(_lib) $(_pc) $(_cmake)
	$(INSTALL) -m 644 include/medinfer.h $(_inc)/medinfer.h
	$(INSTALL) -m 755 $(LIB) $(_lib)/$(MEDINFER_REAL)
	ln -sfn $(MEDINFER_REAL) $(_lib)/$(MEDINFER_SONAME)
	ln -sfn $(MEDINFER_SONAME) $(_lib)/libmedinfer.so
	sed -e 's/@VERSION@/$(MEDINFER_VERSION)/g' packaging/medinfer.pc.in > $(_pc)/medinfer.pc
	sed -e 's/@VERSION@/$(MEDINFER_VERSION)/g' -e 's/@ABI@/$(MEDINFER_ABI)/g' -e 's/@REAL@/$(MEDINFER_REAL)/g' \
	    packaging/MedInferConfig.cmake.in > $(_cmake)/MedInferConfig.cmake
	sed -e 's/@VERSION@/$(MEDINFER_VERSION)/g' packaging/MedInferConfigVersion.cmake.in \
	    > $(_cmake)/MedInferConfigVersion.cmake
	chmod 644 $(_pc)/medinfer.pc $(_cmake)/MedInferConfig.cmake $(_cmake)/MedInferConfigVersion.cmake
	@echo "installed MedInfer $(MEDINFER_VERSION) into $(DESTDIR)$(PREFIX)"

# Removes the files install writes (every version's libmedinfer.so.* of this SONAME),
# then the directories it created if they are left empty.
uninstall:
	rm -f $(_inc)/medinfer.h $(_lib)/libmedinfer.so $(_lib)/$(MEDINFER_SONAME) $(_lib)/$(MEDINFER_SONAME).* \
	    $(_pc)/medinfer.pc $(_cmake)/MedInferConfig.cmake $(_cmake)/MedInferConfigVersion.cmake
	-rmdir $(_cmake) 2>/dev/null
	-rmdir $(_lib)/cmake $(_pc) 2>/dev/null
	@echo "uninstalled MedInfer from $(DESTDIR)$(PREFIX)"

# Tools that build the wheel (build, wheel, setuptools) into .venv.
packaging-deps: $(PKG_DEPS_STAMP)
$(PKG_DEPS_STAMP): packaging/requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r packaging/requirements.txt
	@touch $@

# The wheel: setup.py copies $(LIB) into the package and checks its version.
WHEEL_OUT ?= $(DIST_DIR)
wheel: lib version-check packaging-deps
	@mkdir -p $(WHEEL_OUT)
	rm -rf $(PKG_BUILD)/setuptools
	$(PY) -m build --wheel --no-isolation --outdir $(WHEEL_OUT) . > $(PKG_BUILD)/wheel.log 2>&1 \
	    || { cat $(PKG_BUILD)/wheel.log; exit 1; }
	@ls -1 $(WHEEL_OUT)/medinfer-$(MEDINFER_VERSION)-*.whl

dist: lib version-check abi-check wheel
	@mkdir -p $(DIST_DIR)
	@git diff --quiet HEAD -- || echo "dist: note: the source tarball is HEAD; uncommitted changes are not in it" >&2
	git archive --format=tar.gz --prefix=medinfer-$(MEDINFER_VERSION)/ -o $(DIST_DIR)/medinfer-$(MEDINFER_VERSION).tar.gz HEAD
	rm -rf $(PKG_BUILD)/bin-stage
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(PKG_BUILD)/bin-stage PREFIX=/$(BIN_NAME) > /dev/null
	cp README.md CHANGELOG.md docs/install.md $(PKG_BUILD)/bin-stage/$(BIN_NAME)/
	strip --strip-unneeded $(PKG_BUILD)/bin-stage/$(BIN_NAME)/lib/$(MEDINFER_REAL)  # dynamic symbols stay
	[ ! -f LICENSE ] || cp LICENSE $(PKG_BUILD)/bin-stage/$(BIN_NAME)/
	tar -C $(PKG_BUILD)/bin-stage --owner=0 --group=0 --numeric-owner -czf $(DIST_DIR)/$(BIN_NAME).tar.gz $(BIN_NAME)
	cd $(DIST_DIR) && rm -f SHA256SUMS && sha256sum medinfer-$(MEDINFER_VERSION).tar.gz $(BIN_NAME).tar.gz \
	    medinfer-$(MEDINFER_VERSION)-*.whl > SHA256SUMS
	@cat $(DIST_DIR)/SHA256SUMS

# Everything above against temporary prefixes (packaging/install_test.sh).
dist-test: lib packaging-deps
	packaging/install_test.sh
