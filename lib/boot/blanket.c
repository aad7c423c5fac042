/* blanket.c - scimg_blanket_create(): build the blanket, the nested Xen
 * layer a Supercloud image runs on at every provider.
 *
 *   mmdebstrap (Debian's packages: Xen 4.17, a dom0 kernel whose
 *   initramfs holds every storage driver a provider's HVM guest needs,
 *   GRUB for BIOS, UEFI and Xen PV)
 *     -> the dom0 service (blanket-dom0.sh) and its systemd unit, fstab,
 *        a bridge for the domUs' vifs
 *     -> a GPT disk (BIOS boot partition, ESP, ext4 root) assembled in a
 *        libguestfs appliance, GRUB installed for i386-pc and x86_64-efi
 *        (removable path), a grub.cfg that boots Xen with dom0
 *     -> cached as a raw file named by a digest of everything that makes
 *        it (suite, packages, size, this recipe's version, the service)
 *     -> written to OUT as qcow2 or raw through scimg_convert (OUT
 *        appears only when complete).
 * The archive is needed once per package set; after that everything is
 * offline.  Under QEMU (SMBIOS product "scimg-boot-test", set by
 * scimg_boot_test) GRUB adds the options that make Xen and dom0 run
 * under TCG emulation; anywhere else they boot with their defaults.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot-int.h"
#include "appliance.h"
#include "package/package.h"
#include "lib/boot/blanket-dom0.h" /* generated from blanket-dom0.sh */

#define RECIPE "scimg-blanket-1"
#define DEF_SUITE "bookworm"
#define DEF_MIRROR "http://deb.debian.org/debian"
#define DEF_SIZE (3ull << 30)
#define ROOT_UUID "5c1a6e00-0d00-4d00-9a00-0000000b1a4e"

static const char base_packages[] =
	"linux-image-amd64,xen-system-amd64,grub-xen-host,grub2-common,grub-pc-bin,grub-efi-amd64-bin,"
	"systemd-sysv,udev,initramfs-tools,kmod,e2fsprogs,procps,util-linux,iproute2,qemu-utils";

static const char service_unit[] =
	"[Unit]\n"
	"Description=scimg blanket: start the Supercloud guests on the other disks\n"
	"After=xen.service xenconsoled.service xendomains.service local-fs.target "
	"systemd-networkd.service\n"
	"Wants=xen.service\n\n"
	"[Service]\n"
	"Type=oneshot\n"
	"RemainAfterExit=yes\n"
	"ExecStart=/usr/local/sbin/scimg-blanket\n"
	"TimeoutStartSec=infinity\n\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

/* ---- small helpers --------------------------------------------------------- */

static int write_file(struct scimg_ctx *ctx, const char *dir, const char *rel,
		      const char *text, mode_t mode)
{
	char *p = NULL;
	int fd, r = 0;
	size_t n = strlen(text);

	if (asprintf(&p, "%s/%s", dir, rel) < 0)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) < 0)
		r = scimg_int_err(ctx, -errno ? -errno : -EIO, "'%s': cannot write: %s", p,
				  strerror(errno));
	if (fd >= 0 && close(fd) < 0 && !r)
		r = scimg_int_err(ctx, -errno, "'%s': cannot write: %s", p, strerror(errno));
	free(p);
	return r;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)f;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

/* Remove DIR and everything under it, not crossing into other mounts. */
static void rm_tree(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Run ARGV (argv[0] found in $PATH) with its output appended to LOG, in
 * its own process group; cancel kills the group.  0, or -errno naming
 * WHAT and LOG's last line. */
static int run(struct scimg_ctx *ctx, const char *what, char *const argv[], const char *log,
	       const char *package)
{
	int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600), st = 0;
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char last[512];
	pid_t pid, w;

	if (lfd < 0 || nul < 0) {
		int e = errno;
		if (lfd >= 0)
			close(lfd);
		if (nul >= 0)
			close(nul);
		return scimg_int_err(ctx, -e, "'%s': cannot create the build log: %s", log,
				     strerror(e));
	}
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		dup2(nul, 0);
		dup2(lfd, 1);
		dup2(lfd, 2);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(lfd);
	close(nul);
	if (pid < 0)
		return scimg_int_err(ctx, -errno, "cannot start %s: %s", argv[0], strerror(errno));
	setpgid(pid, pid);
	for (;;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			break;
		if (ctx->cancelled) {
			kill(-pid, SIGTERM);
			poll(NULL, 0, 500);
			kill(-pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return scimg_int_check_cancel(ctx);
		}
		poll(NULL, 0, 100);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	scimg_int_boot_last_line(log, last, sizeof(last));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return scimg_int_err(ctx, -ENOENT, "%s: '%s' could not be run (install the Debian "
				     "package %s)", what, argv[0], package);
	return scimg_int_err(ctx, -EIO, "%s failed (%s %d): %.300s (log: %s)", what,
			     WIFEXITED(st) ? "status" : "signal",
			     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), last, log);
}

static void say(const struct scimg_blanket_opts *o, const char *fmt, ...) SCIMG_PRINTF(2, 3);
static void say(const struct scimg_blanket_opts *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!o->notice)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->notice(o->notice_opaque, msg);
}

/* ---- the dom0 root -------------------------------------------------------- */

/* The newest FILE-* under ROOT/boot ("vmlinuz", "initrd.img", "xen"),
 * as "/boot/NAME", or NULL. */
static char *newest_boot(const char *root, const char *prefix, const char *suffix)
{
	char *dir = NULL, *best = NULL;
	struct dirent *de;
	DIR *d;

	if (asprintf(&dir, "%s/boot", root) < 0)
		return NULL;
	d = opendir(dir);
	free(dir);
	if (!d)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), pl = strlen(prefix), sl = strlen(suffix);

		if (l <= pl + sl || strncmp(de->d_name, prefix, pl) ||
		    strcmp(de->d_name + l - sl, suffix))
			continue;
		if (!best || strverscmp(de->d_name, best) > 0) {
			free(best);
			best = strdup(de->d_name);
		}
	}
	closedir(d);
	if (best) {
		char *p = NULL;
		if (asprintf(&p, "/boot/%s", best) < 0)
			p = NULL;
		free(best);
		return p;
	}
	return NULL;
}

static char *grub_cfg(const char *xen, const char *kernel, const char *initrd)
{
	char *s = NULL;

	if (asprintf(&s,
		     "# scimg blanket: Xen 4.17 with a Debian dom0 (written by scimg blanket create)\n"
		     "serial --unit=0 --speed=115200\n"
		     "terminal_input serial console\n"
		     "terminal_output serial console\n"
		     "set timeout=1\n"
		     "insmod part_gpt\ninsmod ext2\ninsmod multiboot2\ninsmod gzio\n"
		     "search --no-floppy --fs-uuid --set=root %s\n"
		     "set xenopts=\"console=com1,vga com1=115200,8n1 dom0_mem=1024M,max:1024M\"\n"
		     "set dom0opts=\"\"\n"
		     "# under QEMU's TCG emulation (scimg boot-test): SMAP makes a PV dom0 crash\n"
		     "# at its first bounce frame, and page-table isolation and address-space\n"
		     "# randomisation cost minutes; neither changes what is being tested\n"
		     "if insmod smbios; then\n"
		     "  smbios --type 1 --get-string 5 --set=scimg_product\n"
		     "  if [ \"$scimg_product\" = \"scimg-boot-test\" ]; then\n"
		     "    set xenopts=\"$xenopts dom0_max_vcpus=1 smap=0 xpti=false spec-ctrl=no noreboot\"\n"
		     "    set dom0opts=\"quiet norandmaps mitigations=off\"\n"
		     "  fi\n"
		     "fi\n"
		     "menuentry 'scimg blanket: Xen with dom0' {\n"
		     "  multiboot2 %s $xenopts\n"
		     "  module2 %s root=UUID=%s ro console=hvc0 $dom0opts\n"
		     "  module2 %s\n"
		     "}\n", ROOT_UUID, xen, kernel, ROOT_UUID, initrd) < 0)
		return NULL;
	return s;
}

static int prepare_root(struct scimg_ctx *ctx, const char *root)
{
	static const char *const dirs[] = {
		"usr/local/sbin", "etc/systemd/system/multi-user.target.wants",
		"etc/systemd/network", "boot/efi",
	};
	char *p = NULL;
	int r;

	for (size_t i = 0; i < SCIMG_ARRAY_SIZE(dirs); i++) {
		if (asprintf(&p, "%s/%s", root, dirs[i]) < 0)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
		mkdir(p, 0755);
		free(p);
	}
	if ((r = write_file(ctx, root, "usr/local/sbin/scimg-blanket", scimg_blanket_dom0_sh, 0755)) < 0 ||
	    (r = write_file(ctx, root, "etc/systemd/system/scimg-blanket.service", service_unit, 0644)) < 0 ||
	    (r = write_file(ctx, root, "etc/fstab", "UUID=" ROOT_UUID " / ext4 errors=remount-ro 0 1\n",
			    0644)) < 0 ||
	    (r = write_file(ctx, root, "etc/hostname", "scimg-blanket\n", 0644)) < 0 ||
	    /* xenconsoled keeps each domU's console in a file the service reads */
	    (r = write_file(ctx, root, "etc/default/xen",
			    "XENCONSOLED_ARGS=\"--log=guest --log-dir=/var/log/xen/console\"\n", 0644)) < 0 ||
	    /* the domUs' vifs: a bridge on the provider's first NIC, DHCP */
	    (r = write_file(ctx, root, "etc/systemd/network/10-xenbr0.netdev",
			    "[NetDev]\nName=xenbr0\nKind=bridge\n", 0644)) < 0 ||
	    (r = write_file(ctx, root, "etc/systemd/network/20-uplink.network",
			    "[Match]\nType=ether\nName=en* eth*\n\n[Network]\nBridge=xenbr0\n", 0644)) < 0 ||
	    (r = write_file(ctx, root, "etc/systemd/network/30-xenbr0.network",
			    "[Match]\nName=xenbr0\n\n[Network]\nDHCP=yes\n", 0644)) < 0)
		return r;
	/* enable the service and networkd; no getty on dom0's consoles (the
	 * serial line belongs to the report) */
	if (asprintf(&p, "%s/etc/systemd/system/multi-user.target.wants/scimg-blanket.service", root) < 0)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	unlink(p);
	r = symlink("/etc/systemd/system/scimg-blanket.service", p);
	free(p);
	if (r < 0)
		return scimg_int_err(ctx, -errno, "cannot enable the blanket service: %s", strerror(errno));
	if (asprintf(&p, "%s/etc/systemd/system/multi-user.target.wants/systemd-networkd.service", root) < 0)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	unlink(p);
	r = symlink("/lib/systemd/system/systemd-networkd.service", p);
	free(p);
	if (r < 0)
		return scimg_int_err(ctx, -errno, "cannot enable systemd-networkd: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (asprintf(&p, "%s/etc/systemd/system/%s", root,
			     i ? "serial-getty@hvc0.service" : "getty@tty1.service") < 0)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		unlink(p);
		r = symlink("/dev/null", p);
		free(p);
		if (r < 0)
			return scimg_int_err(ctx, -errno, "cannot mask a getty: %s", strerror(errno));
	}
	return 0;
}

/* ---- the disk ------------------------------------------------------------------ */

struct disk_setup {
	const char *path;
};

static int disk_setup(guestfs_h *g, void *opaque)
{
	struct disk_setup *d = opaque;

	return guestfs_add_drive_opts(g, d->path, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw", -1);
}

static int gerr(struct scimg_ctx *ctx, guestfs_h *g, const char *what)
{
	const char *e = guestfs_last_error(g);

	return scimg_int_err(ctx, -EIO, "blanket disk: libguestfs: %s: %s", what, e ? e : "failed");
}

/* Partition DISK (1 MiB BIOS boot, 128 MiB ESP, root), fill the root from
 * TARBALL, install GRUB for BIOS and UEFI and write grub.cfg. */
static int assemble(struct scimg_ctx *ctx, const struct scimg_blanket_opts *o, const char *disk,
		    const char *tarball, const char *cfg)
{
	struct disk_setup ds = { disk };
	struct scimg_gf_launch l = {
		.path = disk, .setup = disk_setup, .setup_opaque = &ds,
		.notice = o->notice, .notice_opaque = o->notice_opaque,
	};
	guestfs_h *g = NULL;
	char *out = NULL;
	int r;

	if ((r = scimg_int_gf_launch(ctx, &l, &g)) < 0)
		return r;
	say(o, "partitioning and filling the disk");
	if (guestfs_part_init(g, "/dev/sda", "gpt") < 0 ||
	    guestfs_part_add(g, "/dev/sda", "p", 2048, 4095) < 0 ||
	    guestfs_part_add(g, "/dev/sda", "p", 4096, 266239) < 0 ||
	    guestfs_part_add(g, "/dev/sda", "p", 266240, -34) < 0 ||
	    guestfs_part_set_gpt_type(g, "/dev/sda", 1, "21686148-6449-6E6F-744E-656564454649") < 0 ||
	    guestfs_part_set_gpt_type(g, "/dev/sda", 2, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") < 0 ||
	    guestfs_part_set_name(g, "/dev/sda", 3, "scimg-blanket-root") < 0) {
		r = gerr(ctx, g, "partitioning");
		goto out;
	}
	if (guestfs_mkfs_opts(g, "vfat", "/dev/sda2", -1) < 0 ||
	    guestfs_mkfs_opts(g, "ext4", "/dev/sda3", -1) < 0 ||
	    guestfs_set_uuid(g, "/dev/sda3", ROOT_UUID) < 0 ||
	    guestfs_set_label(g, "/dev/sda3", "blanket") < 0) {
		r = gerr(ctx, g, "making the filesystems");
		goto out;
	}
	if (guestfs_mount(g, "/dev/sda3", "/") < 0 ||
	    guestfs_tar_in_opts(g, tarball, "/",
				GUESTFS_TAR_IN_OPTS_XATTRS, 1, -1) < 0 ||
	    guestfs_mkdir_p(g, "/boot/efi") < 0 ||
	    guestfs_mount(g, "/dev/sda2", "/boot/efi") < 0) {
		r = gerr(ctx, g, "filling the root filesystem");
		goto out;
	}
	say(o, "installing GRUB for BIOS and UEFI");
	/* grub-install's messages are the error when it fails.  One &&
	 * chain per try: "set -e" is ignored inside a group that "||"
	 * tests, which once let a failed BIOS install through unseen (a
	 * blanket with no boot code that SeaBIOS cannot start).  The BIOS
	 * install sometimes fails in the appliance under load ("File system
	 * `ext2' doesn't support embedding ... required for cross-disk
	 * install": grub took the root partition for a disk of its own;
	 * seen in 2 of 4 fresh CI builds, built beside guest builds), so it is tried
	 * three times, with what grub-probe makes of /boot/grub logged
	 * after each failure; stdout names the retries. */
	out = guestfs_sh(g, "n=0; ok=0\n"
			 "while [ $n -lt 3 ]; do n=$((n+1))\n"
			 "  if grub-install --target=i386-pc /dev/sda >>/tmp/grub.log 2>&1 &&\n"
			 "     test -s /boot/grub/i386-pc/core.img; then ok=1; break; fi\n"
			 "  echo \"try $n failed; grub-probe: device $(grub-probe -t device /boot/grub 2>&1),"
			 " drive $(grub-probe -t drive /boot/grub 2>&1)\" >>/tmp/grub.log\n"
			 "  echo \"try $n failed\"; sync; sleep 3\n"
			 "done\n"
			 "[ $ok = 1 ] && grub-install --target=x86_64-efi --efi-directory=/boot/efi "
			 "--removable --no-nvram --no-uefi-secure-boot >>/tmp/grub.log 2>&1 &&\n"
			 "test -s /boot/efi/EFI/BOOT/BOOTX64.EFI || "
			 "{ tr '\\n' ' ' </tmp/grub.log | tail -c 900 >&2; exit 1; }\n");
	if (!out) {
		r = gerr(ctx, g, "installing GRUB");
		goto out;
	}
	if (*out) {
		for (char *p = out; *p; p++)
			if (*p == '\n')
				*p = ' ';
		say(o, "GRUB for BIOS: %sthe next try worked", out);
	}
	free(out);
	out = NULL;
	if (guestfs_write(g, "/boot/grub/grub.cfg", cfg, strlen(cfg)) < 0 ||
	    guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0) {
		r = gerr(ctx, g, "writing grub.cfg");
		goto out;
	}
	r = 0;
out:
	free(out);
	guestfs_close(g);
	return r;
}

/* ---- the build ------------------------------------------------------------------ */

/* PATH's content (at most 64 KiB) as a string in *OUT. */
static int read_file_str(struct scimg_ctx *ctx, const char *path, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *buf;
	ssize_t n;

	*out = NULL;
	if (fd < 0)
		return -errno;
	buf = malloc(65536);
	if (!buf) {
		close(fd);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	n = read(fd, buf, 65535);
	close(fd);
	if (n <= 0) {
		free(buf);
		return -EIO;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}

static int build(struct scimg_ctx *ctx, const struct scimg_blanket_opts *o, const char *cache,
		 const char *packages, uint64_t size, const char *final)
{
	char *work = NULL, *root = NULL, *tar = NULL, *disk = NULL, *log = NULL, *cfg = NULL;
	char *xen = NULL, *kernel = NULL, *initrd = NULL, *inc = NULL, *tmptar = NULL;
	char *cfgpath = NULL; /* grub.cfg kept beside the root tarball */
	struct stat st;
	int r, fd;

	if ((r = scimg_int_tmp_dir(ctx, "blanket", cache, NULL, &work)) < 0)
		return r;
	/* the dom0 root is kept as a tarball beside the build until the disk
	 * is made: a failure after mmdebstrap does not download it again */
	if (asprintf(&root, "%s/root", work) < 0 || asprintf(&tar, "%s.root.tar", final) < 0 ||
	    asprintf(&tmptar, "%s/root.tar", work) < 0 ||
	    asprintf(&cfgpath, "%s.grub.cfg", final) < 0 ||
	    asprintf(&disk, "%s/disk.raw", work) < 0 || asprintf(&log, "%s/build.log", cache) < 0 ||
	    asprintf(&inc, "--include=%s", packages) < 0) {
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (stat(tar, &st) == 0 && S_ISREG(st.st_mode) && read_file_str(ctx, cfgpath, &cfg) == 0) {
		say(o, "the dom0 root of an earlier, unfinished build is there: %s", tar);
		goto assemble_disk;
	}
	unlink(log);
	say(o, "mmdebstrap %s (needs Debian's archive once; log: %s)",
	    o->suite ? o->suite : DEF_SUITE, log);
	{
		char *const argv[] = {
			"mmdebstrap", "--mode=auto", "--variant=minbase", inc,
			"--aptopt=APT::Install-Recommends \"false\"",
			"--dpkgopt=path-exclude=/usr/share/man/*",
			"--dpkgopt=path-exclude=/usr/share/locale/*",
			"--dpkgopt=path-exclude=/usr/share/doc/*",
			(char *)(o->suite ? o->suite : DEF_SUITE), root,
			(char *)(o->mirror ? o->mirror : DEF_MIRROR), NULL,
		};
		if ((r = run(ctx, "mmdebstrap", argv, log, "mmdebstrap")) < 0)
			goto out;
	}
	if ((r = prepare_root(ctx, root)) < 0)
		goto out;
	xen = newest_boot(root, "xen-", ".gz");
	kernel = newest_boot(root, "vmlinuz-", "");
	initrd = newest_boot(root, "initrd.img-", "");
	if (!xen || !kernel || !initrd) {
		r = scimg_int_err(ctx, -ENOENT, "blanket: the dom0 root has no %s under /boot",
				  !xen ? "Xen hypervisor (xen-*.gz)" : !kernel ? "kernel" : "initramfs");
		goto out;
	}
	if (!(cfg = grub_cfg(xen, kernel, initrd))) {
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	{
		char *const argv[] = { "tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tmptar,
				       ".", NULL };

		if ((r = run(ctx, "packing the dom0 root", argv, log, "tar")) < 0)
			goto out;
		if ((r = write_file(ctx, "/", cfgpath, cfg, 0644)) < 0)
			goto out;
		if (rename(tmptar, tar) < 0) {
			r = scimg_int_err(ctx, -errno, "'%s': cannot keep the dom0 root: %s", tar,
					  strerror(errno));
			goto out;
		}
	}
	rm_tree(root);
assemble_disk:
	fd = open(disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		r = scimg_int_err(ctx, -errno, "'%s': cannot create: %s", disk, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if ((r = assemble(ctx, o, disk, tar, cfg)) < 0)
		goto out;
	if ((r = scimg_int_check_cancel(ctx)) < 0)
		goto out;
	if (rename(disk, final) < 0) {
		r = scimg_int_err(ctx, -errno, "'%s': cannot rename into the cache: %s", final,
				  strerror(errno));
		goto out;
	}
	unlink(tar);
	unlink(cfgpath);
	r = 0;
out:
	rm_tree(work);
	free(work);
	free(root);
	free(tar);
	free(disk);
	free(log);
	free(cfg);
	free(xen);
	free(kernel);
	free(initrd);
	free(inc);
	free(tmptar);
	free(cfgpath);
	return r;
}

int scimg_blanket_path(struct scimg_ctx *ctx, const struct scimg_blanket_opts *uopts,
		       char **path, int *cached)
{
	struct scimg_blanket_opts o;
	const char *cache;
	char *packages = NULL, *key = NULL, *final = NULL, *lock = NULL;
	scimg_sha256_hex h;
	uint64_t size;
	struct stat st;
	int r, lfd = -1;

	*path = NULL;
	if (cached)
		*cached = 0;
	memset(&o, 0, sizeof(o));
	if (!uopts || uopts->size < offsetof(struct scimg_blanket_opts, cache_dir))
		return scimg_int_err(ctx, -EINVAL, "scimg_blanket: options missing or options.size too small");
	memcpy(&o, uopts, uopts->size < sizeof(o) ? uopts->size : sizeof(o));
	size = o.disk_size ? o.disk_size : DEF_SIZE;
	if (size < (1ull << 30) || size > (1ull << 40))
		return scimg_int_err(ctx, -EINVAL, "blanket disk size %llu out of range (1 GiB - 1 TiB)",
				     (unsigned long long)size);
	if (o.extra_packages)
		for (const char *s = o.extra_packages; *s; s++)
			if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(",.+-:", *s)))
				return scimg_int_err(ctx, -EINVAL, "packages: '%s' is not a comma-separated "
						     "list of Debian package names", o.extra_packages);
	if (o.suite)
		for (const char *s = o.suite; *s; s++)
			if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
				return scimg_int_err(ctx, -EINVAL, "suite '%s' is not a Debian suite name",
						     o.suite);
	cache = o.cache_dir ? o.cache_dir : getenv("SCIMG_BLANKET_CACHE");
	if (!cache || !*cache)
		cache = "/var/tmp/scimg-blanket-cache";
	if (asprintf(&packages, "%s%s%s", base_packages, o.extra_packages && *o.extra_packages ? "," : "",
		     o.extra_packages ? o.extra_packages : "") < 0 ||
	    asprintf(&key, "%s\n%s\n%s\n%llu\n%s", RECIPE, o.suite ? o.suite : DEF_SUITE, packages,
		     (unsigned long long)size, scimg_blanket_dom0_sh) < 0) {
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = scimg_int_sha256_buf(ctx, key, strlen(key), h)) < 0)
		goto out;
	if (mkdir(cache, 0755) < 0 && errno != EEXIST) {
		r = scimg_int_err(ctx, -errno, "'%s': cannot create the blanket cache: %s", cache,
				  strerror(errno));
		goto out;
	}
	if (asprintf(&final, "%s/blanket-%.16s.raw", cache, h) < 0 ||
	    asprintf(&lock, "%s/.lock", cache) < 0) {
		r = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (stat(final, &st) == 0 && S_ISREG(st.st_mode)) {
		if (cached)
			*cached = 1;
		*path = final;
		final = NULL;
		r = 0;
		goto out;
	}
	if (o.no_build) {
		r = scimg_int_err(ctx, -ENOENT, "no blanket in the cache '%s' for this package set "
				  "(make it with `scimg blanket create`)", cache);
		goto out;
	}
	/* one build at a time per cache; the second waits and finds it */
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		r = scimg_int_err(ctx, -errno, "'%s': cannot lock the blanket cache: %s", lock,
				  strerror(errno));
		goto out;
	}
	if (stat(final, &st) != 0 && (r = build(ctx, &o, cache, packages, size, final)) < 0)
		goto out;
	*path = final;
	final = NULL;
	r = 0;
out:
	if (lfd >= 0)
		close(lfd);
	free(packages);
	free(key);
	free(final);
	free(lock);
	return r;
}

int scimg_blanket_create(struct scimg_ctx *ctx, const struct scimg_blanket_opts *o,
			 const char *out, const char *format)
{
	struct scimg_convert_opts c;
	char *src = NULL;
	int r, cached = 0;

	if (!out || !*out)
		return scimg_int_err(ctx, -EINVAL, "scimg_blanket_create: no output file given");
	if (format && strcmp(format, "qcow2") && strcmp(format, "raw"))
		return scimg_int_err(ctx, -EINVAL, "blanket format '%s': qcow2 or raw", format);
	if ((r = scimg_blanket_path(ctx, o, &src, &cached)) < 0)
		return r;
	if (cached)
		say(o, "using the cached build %s", src);
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.src = src;
	c.src_format = "raw";
	c.dst = out;
	c.dst_format = format ? format : "qcow2";
	r = scimg_convert(ctx, &c);
	free(src);
	return r;
}
