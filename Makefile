# Builds the C library with cargo and installs it for C and C++ programs (Linux):
#   make                                  cargo build; the SONAME link beside target/release/libxeroguard.so
#   make install PREFIX=/usr/local        header, shared library + links, static library, pkg-config file
#   make uninstall PREFIX=/usr/local
# DESTDIR stages an install for packaging; LIBDIR, INCLUDEDIR, PKGCONFIGDIR override the layout.
# PROFILE=release-with-debug installs a library with symbols and debug info (release strips them).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
CARGO ?= cargo
PROFILE ?= release
INSTALL ?= install
STRIP ?= strip

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
OUT := $(TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# build.rs sets the SONAME; it is read back from the built library, so this file never restates the rule.
SONAME = $(shell objdump -p $(OUT)/libxeroguard.so | sed -n 's/^ *SONAME *//p')
# What the static library needs from the system: rustc's `--print native-static-libs` on Linux.
STATIC_DEPS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all build cargo-build install uninstall
all: build

# Separate from the rules that use $(SONAME): make expands a rule's whole recipe before running it.
cargo-build:
	$(CARGO) build --profile $(PROFILE) --lib

build: cargo-build
	@test -n "$(SONAME)" || { echo "make: no SONAME read from $(OUT)/libxeroguard.so (needs objdump)" >&2; exit 1; }
	ln -sf libxeroguard.so $(OUT)/$(SONAME)

install: build
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 include/xeroguard.h $(DESTDIR)$(INCLUDEDIR)/xeroguard.h
	$(INSTALL) -m 755 $(OUT)/libxeroguard.so $(DESTDIR)$(LIBDIR)/libxeroguard.so.$(VERSION)
	ln -sf libxeroguard.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libxeroguard.so
	$(INSTALL) -m 644 $(OUT)/libxeroguard.a $(DESTDIR)$(LIBDIR)/libxeroguard.a
	$(if $(filter release,$(PROFILE)),$(STRIP) --strip-debug $(DESTDIR)$(LIBDIR)/libxeroguard.a)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@STATIC_DEPS@|$(STATIC_DEPS)|g' \
	    xeroguard.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/xeroguard.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/xeroguard.h $(DESTDIR)$(PKGCONFIGDIR)/xeroguard.pc \
	      $(DESTDIR)$(LIBDIR)/libxeroguard.a $(DESTDIR)$(LIBDIR)/libxeroguard.so $(DESTDIR)$(LIBDIR)/libxeroguard.so.*
