#!/bin/sh
# Build the cardless-atm Debian package from already built binaries:
#   packaging/deb/build.sh VERSION BINDIR OUTDIR
# BINDIR holds atm and atmctl (linux, the package's architecture). The
# Depends line is computed from the binaries' libraries (dpkg-shlibdeps)
# plus what they load or run without linking: Mesa's drivers, the CJK
# font, the cage compositor and Xwayland.
set -eu
VERSION="$1"; BINDIR="$2"; OUTDIR="$3"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ARCH=$(dpkg --print-architecture)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PKG="$WORK/cardless-atm"

install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/usr/lib/cardless-atm" "$PKG/lib/systemd/system" \
	"$PKG/etc/cardless-atm" "$PKG/usr/share/doc/cardless-atm"
install -m 0755 "$BINDIR/atm" "$BINDIR/atmctl" "$PKG/usr/bin/"
install -m 0755 "$ROOT/configs/kiosk-cage.sh" "$PKG/usr/lib/cardless-atm/kiosk-cage.sh"
install -m 0644 "$ROOT/configs/cardless-atm.service" "$ROOT/configs/cardless-atm-alarm.service" "$PKG/lib/systemd/system/"
install -m 0644 "$ROOT/configs/atm.production.json" "$PKG/etc/cardless-atm/atm.json"
install -m 0644 "$ROOT/packaging/deb/copyright" "$PKG/usr/share/doc/cardless-atm/copyright"
sed "s/@VERSION@/$VERSION/; s/@DATE@/$(LC_ALL=C date -u -d @0 '+%a, %d %b %Y %H:%M:%S +0000')/" \
	"$ROOT/packaging/deb/changelog" | gzip -9n > "$PKG/usr/share/doc/cardless-atm/changelog.gz"
install -m 0755 "$ROOT/packaging/deb/postinst" "$ROOT/packaging/deb/postrm" "$PKG/DEBIAN/"
printf '/etc/cardless-atm/atm.json\n' > "$PKG/DEBIAN/conffiles"

# Runtime libraries of the binaries, as Debian names them.
mkdir -p "$WORK/debian"
printf 'Source: cardless-atm\n\nPackage: cardless-atm\nArchitecture: any\n' > "$WORK/debian/control"
SHLIBS=$(cd "$WORK" && dpkg-shlibdeps -O "$PKG/usr/bin/atm" "$PKG/usr/bin/atmctl" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
DEPENDS="$SHLIBS, libegl-mesa0, libgl1-mesa-dri, fonts-noto-cjk, cage, xwayland, adduser"
SIZE=$(du -sk "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: cardless-atm
Version: $VERSION
Architecture: $ARCH
Maintainer: Cardless ATM team <atm@cardless.example>
Installed-Size: $SIZE
Depends: $DEPENDS
Section: misc
Priority: optional
Homepage: https://cardless.example/atm
Description: cardless-withdrawal ATM appliance (kiosk)
 The ATM-resident part of a cardless cash withdrawal system: the customer
 scans a QR code with the bank's app and the ATM pays out. It runs full
 screen under the cage kiosk compositor, drives an XFS4IoT or Puloon LCDM
 cash dispenser, keeps its electronic journal in a bbolt store and talks
 ISO 8583 to the bank's proxy and host. The service starts only once the
 key ceremony (atmctl) has written the key store.
CONTROL
(cd "$PKG" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$PKG/DEBIAN/md5sums"
mkdir -p "$OUTDIR"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$OUTDIR/cardless-atm_${VERSION}_${ARCH}.deb" >/dev/null
echo "$OUTDIR/cardless-atm_${VERSION}_${ARCH}.deb"
