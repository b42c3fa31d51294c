#!/bin/sh
# /init of the kscope guest lab: PID 1 (busybox sh) in a QEMU guest running
# Debian's own kernel. It mounts the kernel filesystems, loads the modules
# the host listed, then either runs the batch the host appended to the
# initramfs or, in shell mode, gives a person a shell on the console.
#
# The batch (written by the host into /batch):
#   nonce             a random token that starts every result line
#   NNN.name, NNN.sh  one command each, run in NNN order as `sh NNN.sh`
#   mode              "batch" (default) or "shell"
#
# Results go to the second serial port, /dev/ttyS1, which the kernel never
# writes to (its console is ttyS0), as lines "@@kscope NONCE WORD ...":
#   begin NAME | stdout NAME BYTES | stderr NAME BYTES | end NAME STATUS | done
# each stdout/stderr line followed by the bytes in base64, so that no output
# can look like a result line.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t securityfs securityfs /sys/kernel/security

release=$(uname -r)
while read -r module; do
	[ -n "$module" ] && insmod "/lib/modules/$release/$module"
done < /etc/kscope/modules
echo 1 > /proc/sys/kernel/sysrq
echo "kscope-lab: guest $release up after $(cut -d' ' -f1 /proc/uptime) s"

if [ "$(cat /batch/mode 2>/dev/null)" = shell ]; then
	echo "kscope-lab: a shell in the guest; kscope is on PATH. 'poweroff -f' ends it."
	cd /root 2>/dev/null || cd /
	setsid cttyhack sh -l
	poweroff -f
fi

nonce=$(cat /batch/nonce)
results=/dev/ttyS1
# Raw mode, so that the bytes arrive as written; setting it again later
# waits until the port has sent everything (tcsetattr with TCSADRAIN).
stty -F "$results" raw -echo -onlcr
exec 3>"$results"
say() { echo "@@kscope $nonce $*" >&3; }
flush() { stty -F "$results" -onlcr; }

for script in /batch/*.sh; do
	[ -f "$script" ] || continue
	name=$(cat "${script%.sh}.name")
	say begin "$name"
	flush
	(cd / && exec sh "$script") > /tmp/stdout 2> /tmp/stderr < /dev/null
	status=$?
	say stdout "$name" "$(wc -c < /tmp/stdout)"
	base64 /tmp/stdout >&3
	say stderr "$name" "$(wc -c < /tmp/stderr)"
	base64 /tmp/stderr >&3
	say end "$name" "$status"
	flush
done
say done
flush
exec 3>&-
poweroff -f
