# Cardless withdrawal for ATMs. `make sim` runs the whole system on a laptop,
# `make test` runs every gate CI runs.

GO       ?= go
BIN      := bin
CMDS     := $(notdir $(wildcard cmd/*))
# Debian packages: C libraries Gio needs, software rendering, CJK font, and the
# independent tools the tests use (zbarimg, Xvfb, SoftHSM2, promtool, and the
# kiosk's cage compositor with Xwayland and the grim screen capture; pcscd,
# libpcsclite-dev and vsmartcard-vpcd for the contactless reader and its
# virtual reader).
DEB_PKGS := pkg-config libwayland-dev libx11-dev libx11-xcb-dev libxkbcommon-x11-dev \
            libgles2-mesa-dev libegl1-mesa-dev libffi-dev libxcursor-dev libvulkan-dev \
            libgl1-mesa-dri fonts-noto-cjk zbar-tools xvfb softhsm2 prometheus dpkg-dev lintian \
            cage xwayland grim pcscd libpcsclite-dev vsmartcard-vpcd espeak-ng sox alsa-utils
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Headless GPU rendering through Mesa, no display needed.
export EGL_PLATFORM ?= surfaceless

.PHONY: deb all deps cross-deps build cross test gates unit bench memrss fuzz sim sim-once sim-clean screenshots clean chaos

# Cross-building for linux/arm64 needs cgo (Gio's Wayland/X11/EGL window
# code): a cross compiler and the arm64 builds of the libraries Gio links.
CROSS_DEB_PKGS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross libwayland-dev:arm64 libx11-dev:arm64 \
            libx11-xcb-dev:arm64 libxkbcommon-x11-dev:arm64 libgles2-mesa-dev:arm64 \
            libegl1-mesa-dev:arm64 libffi-dev:arm64 libxcursor-dev:arm64 libxfixes-dev:arm64 \
            libvulkan-dev:arm64 libpcsclite-dev:arm64

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

test: deps gates cross unit

cross-deps: deps
	@dpkg --print-foreign-architectures | grep -qx arm64 || $(SUDO) dpkg --add-architecture arm64; \
	missing=""; for p in $(CROSS_DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Every program builds for the ATM PCs' other platforms: Windows 10 IoT
# (windows/amd64; Gio needs no cgo there) and linux/arm64 (cgo, cross gcc).
# A gate of make test: built, not run (README: Platforms).
cross: cross-deps
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc \
		PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
		$(GO) build -o /dev/null ./cmd/...

gates:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags failpoint ./atm/appliance/ ./atm/store/
	@cp go.mod /tmp/go.mod.tidycheck; cp go.sum /tmp/go.sum.tidycheck; \
	$(GO) mod tidy; \
	if ! cmp -s go.mod /tmp/go.mod.tidycheck || ! cmp -s go.sum /tmp/go.sum.tidycheck; then \
		echo "go mod tidy changed go.mod/go.sum; run it and commit"; \
		cp /tmp/go.mod.tidycheck go.mod; cp /tmp/go.sum.tidycheck go.sum; exit 1; fi

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Resident memory of the real appliance process as make sim runs it,
# headless and in a window under xvfb-run (docs/performance.md, Memory).
# The programs are built into var/memrss/bin, bin/atm with a pprof
# endpoint (cmd/atm/pprof.go), so that heap profiles land in var/memrss.
memrss: deps
	@mkdir -p var/memrss/bin
	$(GO) build -o var/memrss/bin/ ./cmd/...
	$(GO) build -tags pprof -o var/memrss/bin/ ./cmd/atm
	BIN=var/memrss/bin scripts/memrss.sh headless
	BIN=var/memrss/bin xvfb-run -a -s "-screen 0 1280x1024x24" scripts/memrss.sh window

# Short coverage-guided fuzzing of every parser of outside bytes.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzParseToken$$' -fuzztime $(FUZZTIME) ./atm/dispenser
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./atm/qr
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./hsm/pinblock
	$(GO) test -run '^$$' -fuzz '^FuzzPeekTerminal$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzOpenDamagedPages$$' -fuzztime $(FUZZTIME) ./atm/store
	$(GO) test -run '^$$' -fuzz '^FuzzDenominate$$' -fuzztime $(FUZZTIME) ./atm/dispenser
	$(GO) test -run '^$$' -fuzz '^FuzzUnwrap$$' -fuzztime $(FUZZTIME) ./hsm/tr31
	$(GO) test -run '^$$' -fuzz '^FuzzParseTR31Keys$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime $(FUZZTIME) ./atm/dispenser/xfs4iot
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponseToken$$' -fuzztime $(FUZZTIME) ./atm/dispenser/xfs4iot
	$(GO) test -run '^$$' -fuzz '^FuzzParseCommand$$' -fuzztime $(FUZZTIME) ./atm/dispenser/xfs4iot/xfs4iotsim
	$(GO) test -run '^$$' -fuzz '^FuzzParseFrame$$' -fuzztime $(FUZZTIME) ./atm/dispenser/lcdm
	$(GO) test -run '^$$' -fuzz '^FuzzVerifySegment$$' -fuzztime $(FUZZTIME) ./atm/store
	$(GO) test -run '^$$' -fuzz '^FuzzParseAlarms$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzParseReconTotals$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzParseSettlementDate$$' -fuzztime $(FUZZTIME) ./atm/wire
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./atm/receipt
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./atm/host/bindapi
	$(GO) test -run '^$$' -fuzz '^FuzzSubset$$' -fuzztime $(FUZZTIME) ./ui/internal/fontsubset
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./atm/nfc
	$(GO) test -run '^$$' -fuzz '^FuzzParseCommand$$' -fuzztime $(FUZZTIME) ./atm/nfc
	$(GO) test -run '^$$' -fuzz '^FuzzParseResponse$$' -fuzztime $(FUZZTIME) ./atm/nfc

# The whole system on this laptop: host, proxy and ATM as real processes,
# one withdrawal through the phone simulator; stays up until Ctrl-C.
# DISPENSER=xfs4iot runs the XFS4IoT device simulator as its own process and
# drives it over a WebSocket; DISPENSER=lcdm runs the Puloon LCDM simulator on
# a pseudo-terminal and drives it as a serial port (default: the simulator
# inside the ATM). NFC=1 gives the ATM a contactless reader, a vpcd virtual
# reader through pcscd (the system's, or one started for the run as root),
# taps the demo phone (phonesim --nfc) and prints how to tap by hand.
DISPENSER ?= sim
NFC       ?=
SIMFLAGS   = --dispenser=$(DISPENSER) $(if $(filter-out 0 no false,$(NFC)),--nfc)
sim: build
	$(BIN)/sim $(SIMFLAGS)

# The same, stopping after the demo withdrawal (a quick smoke run by hand).
sim-once: build
	$(BIN)/sim --once --window=false $(SIMFLAGS)

# The random kill campaign of issue 16: withdrawals through the real
# appliance process, each ended by SIGKILL at a random moment or commit,
# then the books checked (not part of make test). ROUNDS, SEED, TIME.
ROUNDS ?= 50
SEED   ?= 1
TIME   ?= 30m
chaos: deps
	EGL_PLATFORM=surfaceless $(GO) test -v -tags chaos -run '^TestChaos$$' -count=1 -timeout 120m ./atm/appliance/ \
		-args -chaos.rounds=$(ROUNDS) -chaos.seed=$(SEED) -chaos.time=$(TIME)

# The Debian package of the appliance (atm, atmctl, the systemd units, the
# cage start-up, a production configuration template): dist/*.deb.
VERSION ?= 0.1.0
deb: deps
	@mkdir -p dist/bin
	$(GO) build -trimpath -buildmode=pie -ldflags="-s -w" -o dist/bin/ ./cmd/atm ./cmd/atmctl
	packaging/deb/build.sh $(VERSION) dist/bin dist
	lintian --fail-on error dist/cardless-atm_$(VERSION)_*.deb

# Forget the simulators' state (balances, sessions, cassette counts).
sim-clean:
	rm -rf var

# Every screen in both languages, rendered headless into docs/screens.
screenshots: deps
	$(GO) run ./cmd/screenshots -out docs/screens

clean:
	rm -rf $(BIN)
