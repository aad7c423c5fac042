/* qemu.c - run boots under qemu-system-x86_64 and read their serial
 * consoles.
 *
 * Each QEMU runs in its own process group (killed as a group, and with
 * PR_SET_PDEATHSIG should scimg itself die) with TMPDIR set to the boot
 * test's private directory, so the overlay that -snapshot makes is removed
 * with that directory whatever happens to QEMU.  The serial console goes
 * to a file in the same directory that one loop reads as it grows, for
 * every running boot, ten times a second: a line matching a success or a
 * failure pattern ends that boot at once.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot-int.h"
#include "appliance.h"

extern char **environ;

/* ---- names -------------------------------------------------------------- */

const char *scimg_int_boot_bus_name(unsigned bus)
{
	switch (bus) {
	case SCIMG_BOOT_BUS_IDE: return "ide";
	case SCIMG_BOOT_BUS_SATA: return "sata";
	case SCIMG_BOOT_BUS_VIRTIO_BLK: return "virtio-blk";
	case SCIMG_BOOT_BUS_VIRTIO_SCSI: return "virtio-scsi";
	case SCIMG_BOOT_BUS_NVME: return "nvme";
	default: return "?";
	}
}

const char *scimg_int_boot_fw_name(unsigned fw)
{
	return fw == SCIMG_BOOT_FW_UEFI ? "uefi" : fw == SCIMG_BOOT_FW_BIOS ? "bios" : "?";
}

const char *scimg_int_boot_xen_name(unsigned xen)
{
	return xen == SCIMG_BOOT_XEN_PYGRUB ? "pygrub" : xen == SCIMG_BOOT_XEN_PVGRUB2 ? "pvgrub2"
	       : xen == SCIMG_BOOT_XEN_DIRECT ? "direct" : xen == SCIMG_BOOT_XEN_SCI ? "sci" : "?";
}

const char *scimg_int_boot_res_name(enum scimg_boot_res r)
{
	switch (r) {
	case SCIMG_BOOT_RES_OK: return "ok";
	case SCIMG_BOOT_RES_FAIL: return "fail";
	case SCIMG_BOOT_RES_TIMEOUT: return "timeout";
	default: return "none";
	}
}

/* ---- console patterns ----------------------------------------------------- */

struct pattern {
	const char *what;  /* the reason, followed by the line */
	const char *re;
	int ok;
};

/* What an ordinary Linux guest prints on its serial console once it is up,
 * and what the firmware, the initramfs and systemd print when the boot
 * cannot go on. */
static const struct pattern patterns[] = {
	{ "login prompt", "login: *$", 1 },
	{ "systemd reached the multi-user target", "Reached target .*Multi-User System", 1 },
	{ "systemd reached the graphical target", "Reached target .*Graphical Interface", 1 },
	{ "cloud-init finished", "Cloud-init v\\. .* finished", 1 },
	{ "the initramfs gave up waiting for the root device", "Gave up waiting for root", 0 },
	{ "the root device does not exist", "ALERT! +.* does not exist", 0 },
	{ "emergency mode", "You are in emergency mode|Entering emergency mode|"
			    "Give root password for maintenance", 0 },
	{ "dracut gave up waiting (initqueue timeout)", "dracut-initqueue.*timeout", 0 },
	{ "dracut emergency shell", "dracut:/#", 0 },
	{ "kernel panic", "Kernel panic", 0 },
	/* PID 1 crashed: systemd's crash handler freezes instead of booting on */
	{ "systemd (PID 1) crashed", "systemd\\[1\\]: (Caught <[A-Z]+>|Freezing execution)", 0 },
	{ "the firmware found no bootable device", "No bootable device", 0 },
	{ "the firmware could not boot the disk", "Boot failed", 0 },
	{ "the UEFI shell started: no boot loader found", "^Shell> *$", 0 },
	{ "the UEFI firmware could not load the boot loader", "failed to load Boot", 0 },
};
#define NPAT SCIMG_ARRAY_SIZE(patterns)

/* A Xen boot's console is the blanket's: Xen, dom0 and the blanket
 * service (lib/boot/blanket-dom0.sh), which relays the domU's console as
 * "[domuN] LINE" and ends with its verdict.  Only relayed lines are
 * matched against the guest patterns above; these are the blanket's. */
static const struct pattern xen_patterns[] = {
	{ "the blanket saw the domU boot", "scimg-blanket: SCIMG-XEN-OK ", 1 },
	{ "the blanket could not boot the domU", "scimg-blanket: SCIMG-XEN-FAIL ", 0 },
	{ "the blanket's Xen crashed", "Panic on CPU", 0 },
	{ "the blanket's dom0 crashed", "Dom0 crashed|Domain 0 \\(vcpu#[0-9]+\\) crashed", 0 },
	{ "the blanket's dom0 kernel panicked", "Kernel panic", 0 },
	{ "the blanket found no guest disk", "scimg-blanket: no guest disk attached", 0 },
	{ "the blanket did not boot", "No bootable device|Boot failed|^Shell> *$", 0 },
};
#define NXPAT SCIMG_ARRAY_SIZE(xen_patterns)

struct matcher {
	regex_t re[NPAT];
	int nre;
	regex_t xre[NXPAT];
	int nxre;
	const regex_t *expect;
	const char *expect_src;
};

static int matcher_init(struct scimg_ctx *ctx, struct matcher *m)
{
	for (m->nre = 0; m->nre < (int)NPAT; m->nre++)
		if (regcomp(&m->re[m->nre], patterns[m->nre].re, REG_EXTENDED | REG_NOSUB))
			return scimg_int_err(ctx, -EINVAL, "internal console pattern '%s' does not compile",
					     patterns[m->nre].re);
	for (m->nxre = 0; m->nxre < (int)NXPAT; m->nxre++)
		if (regcomp(&m->xre[m->nxre], xen_patterns[m->nxre].re, REG_EXTENDED | REG_NOSUB))
			return scimg_int_err(ctx, -EINVAL, "internal console pattern '%s' does not compile",
					     xen_patterns[m->nxre].re);
	return 0;
}

static void matcher_free(struct matcher *m)
{
	for (int i = 0; i < m->nre; i++)
		regfree(&m->re[i]);
	for (int i = 0; i < m->nxre; i++)
		regfree(&m->xre[i]);
	m->nre = m->nxre = 0;
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void set_result(struct scimg_boot_one *b, enum scimg_boot_res r, const char *what,
		       const char *line)
{
	if (b->result != SCIMG_BOOT_RES_NONE)
		return;
	b->result = r;
	b->seconds = elapsed(&b->t0);
	if (line)
		snprintf(b->reason, sizeof(b->reason), "%s: '%.400s'", what, line);
	else
		snprintf(b->reason, sizeof(b->reason), "%s", what);
}

/* Match one console line (or the partial line at the end of the output,
 * where a login prompt waits). */
static void match_line(struct matcher *m, struct scimg_boot_one *b, const char *line)
{
	if (b->result != SCIMG_BOOT_RES_NONE || !line[0])
		return;
	if (b->xen) {
		/* "[domuN] LINE": the guest's own line */
		const char *e = strncmp(line, "[domu", 5) == 0 ? strstr(line, "] ") : NULL;

		if (!e) {
			for (int i = 0; i < m->nxre; i++)
				if (regexec(&m->xre[i], line, 0, NULL, 0) == 0) {
					set_result(b, xen_patterns[i].ok ? SCIMG_BOOT_RES_OK
						   : SCIMG_BOOT_RES_FAIL, xen_patterns[i].what, line);
					return;
				}
			return;
		}
		line = e + 2;
		if (!line[0])
			return;
	}
	if (m->expect && regexec(m->expect, line, 0, NULL, 0) == 0) {
		char what[300];
		snprintf(what, sizeof(what), "matched --expect '%.200s'", m->expect_src);
		set_result(b, SCIMG_BOOT_RES_OK, what, line);
		return;
	}
	for (int i = 0; i < m->nre; i++)
		if (regexec(&m->re[i], line, 0, NULL, 0) == 0) {
			set_result(b, patterns[i].ok ? SCIMG_BOOT_RES_OK : SCIMG_BOOT_RES_FAIL,
				   patterns[i].what, line);
			return;
		}
}

static void push_tail(struct scimg_boot_one *b, const char *line)
{
	snprintf(b->tail[b->ntail % SCIMG_BOOT_TAIL_LINES], SCIMG_BOOT_LINE_MAX, "%s", line);
	b->ntail++;
}

static void end_line(struct matcher *m, struct scimg_boot_one *b)
{
	b->line[b->linelen] = '\0';
	if (b->linelen) {
		match_line(m, b, b->line);
		push_tail(b, b->line);
	}
	b->linelen = 0;
}

/* Feed console bytes: escape sequences (colours, cursor moves) and control
 * characters are dropped, non-ASCII characters become '?', lines are
 * matched as they end. */
static void feed(struct matcher *m, struct scimg_boot_one *b, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (b->esc == 1) {          /* after ESC: CSI or a 2-byte sequence */
			b->esc = c == '[' ? 2 : 0;
			continue;
		}
		if (b->esc == 2) {          /* CSI parameters until a final byte */
			if (c >= 0x40 && c <= 0x7e)
				b->esc = 0;
			continue;
		}
		if (c == 0x1b) {
			b->esc = 1;
			continue;
		}
		if (c == '\n') {
			end_line(m, b);
			continue;
		}
		if (c == '\t')
			c = ' ';
		/* beyond ASCII: one '?' per character (a lead byte; the
		 * continuation bytes are dropped), so that lines cut anywhere
		 * and whatever bytes the guest prints stay valid UTF-8 in the
		 * JSON report (a pygrub console once gave a lone 0x80) */
		if (c >= 0x80) {
			if (c < 0xc0)
				continue;
			c = '?';
		}
		if (c < 0x20 || c == 0x7f)
			continue;
		if (b->linelen >= SCIMG_BOOT_LINE_MAX - 1)
			end_line(m, b);
		b->line[b->linelen++] = (char)c;
	}
	/* a prompt waits at the end of a line that has no newline yet */
	if (b->linelen) {
		b->line[b->linelen] = '\0';
		match_line(m, b, b->line);
	}
}

json_object *scimg_int_boot_tail_json(const struct scimg_boot_one *b)
{
	json_object *a = json_object_new_array();
	unsigned n = b->ntail < SCIMG_BOOT_TAIL_LINES ? b->ntail : SCIMG_BOOT_TAIL_LINES;

	if (!a)
		return NULL;
	for (unsigned i = b->ntail - n; i < b->ntail; i++)
		json_object_array_add(a, json_object_new_string(b->tail[i % SCIMG_BOOT_TAIL_LINES]));
	/* the partial line at the end (a prompt) */
	if (b->linelen) {
		char l[SCIMG_BOOT_LINE_MAX];
		memcpy(l, b->line, b->linelen);
		l[b->linelen] = '\0';
		json_object_array_add(a, json_object_new_string(l));
	}
	return a;
}

/* ---- argv ------------------------------------------------------------------ */

struct argv {
	char **v;
	size_t n, cap;
	int oom;
};

static void arg(struct argv *a, const char *fmt, ...) SCIMG_PRINTF(2, 3);
static void arg(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		char **nv = realloc(a->v, nc * sizeof(*nv));
		if (!nv) {
			a->oom = 1;
			return;
		}
		a->v = nv;
		a->cap = nc;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		a->oom = 1;
		s = NULL;
	}
	va_end(ap);
	if (!s)
		return;
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void argv_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* A file name for a QEMU option value: commas doubled, and a relative name
 * made "./..." so that QEMU never reads it as a protocol ("json:",
 * "nbd:"). */
static char *qemu_path(const char *p)
{
	size_t n = strlen(p), extra = 0;
	char *s, *o;

	for (size_t i = 0; i < n; i++)
		extra += p[i] == ',';
	s = malloc(n + extra + 3);
	if (!s)
		return NULL;
	o = s;
	if (p[0] != '/') {
		*o++ = '.';
		*o++ = '/';
	}
	for (size_t i = 0; i < n; i++) {
		*o++ = p[i];
		if (p[i] == ',')
			*o++ = ',';
	}
	*o = '\0';
	return s;
}

/* A Xen boot: the blanket boots (its GRUB sees SMBIOS product
 * "scimg-boot-test" and adds the options TCG needs) and the image is its
 * second disk, whose serial tells the blanket's service the loader.  A
 * direct boot adds a disk on the IDE controller: the carrier (serial
 * scimg-bt-files), a tar of the guest's kernel, initramfs and command line
 * that the service unpacks and gives xl. */
static int xen_disks(struct scimg_boot_env *env, struct scimg_boot_one *b, struct argv *a,
		     const char *disk)
{
	char *bl = qemu_path(env->blanket);

	if (!bl)
		return scimg_int_err(env->ctx, -ENOMEM, "out of memory building the QEMU command line");
	arg(a, "-smbios");
	arg(a, "type=1,manufacturer=scimg,product=scimg-boot-test");
	arg(a, "-drive");
	arg(a, "file=%s,format=%s,if=none,id=bl,snapshot=on,cache=unsafe,media=disk", bl,
	    env->blanket_format);
	arg(a, "-device");
	arg(a, "virtio-blk-pci,drive=bl,bootindex=0");
	arg(a, "-drive");
	if (b->xen == SCIMG_BOOT_XEN_SCI) {
		/* the package file itself: dom0 reads its xl.cfg and members */
		char *sci = env->sci ? qemu_path(env->sci) : NULL;

		if (!sci) {
			free(bl);
			return scimg_int_err(env->ctx, env->sci ? -ENOMEM : -EINVAL,
					     "--xen=sci without an SCI package");
		}
		arg(a, "file=%s,format=raw,if=none,id=d0,snapshot=on,cache=unsafe,media=disk", sci);
		free(sci);
	} else {
		arg(a, "file=%s,format=%s,if=none,id=d0,snapshot=on,cache=unsafe,media=disk",
		    disk, env->disk_format);
	}
	arg(a, "-device");
	arg(a, "virtio-blk-pci,drive=d0,serial=scimg-bt-%s", scimg_int_boot_xen_name(b->xen));
	free(bl);
	if (b->xen == SCIMG_BOOT_XEN_DIRECT) {
		char *ca = env->carrier ? qemu_path(env->carrier) : NULL;

		if (!ca)
			return scimg_int_err(env->ctx, env->carrier ? -ENOMEM : -EINVAL,
					     "a direct Xen boot without its carrier");
		arg(a, "-drive");
		arg(a, "file=%s,format=raw,if=none,id=files,snapshot=on,media=disk", ca);
		/* on the machine's own IDE controller, not a third virtio PCI
		 * disk: with one, every domU of the blanket ran about 100
		 * times slower, pygrub's too (bench/RESULTS.md, stop 26);
		 * ide-hd cannot be read-only, so QEMU's writes, if any, go to
		 * a -snapshot overlay in the private TMPDIR */
		arg(a, "-device");
		arg(a, "ide-hd,drive=files,bus=ide.1,serial=scimg-bt-files");
		free(ca);
	}
	return a->oom ? scimg_int_err(env->ctx, -ENOMEM, "out of memory building the QEMU command line")
		      : 0;
}

static int build_argv(struct scimg_boot_env *env, struct scimg_boot_one *b, struct argv *a)
{
	/* --xen=sci alone has no converted disk: QEMU opens the package */
	char *disk = env->disk ? qemu_path(env->disk) : strdup("");
	char *con = qemu_path(b->con_path), *code = NULL, *vars = NULL;
	const char *machine = b->bus == SCIMG_BOOT_BUS_SATA ? "q35" : "pc";
	int r = 0;

	if (!disk || !con)
		goto oom;
	if (!env->disk && b->xen != SCIMG_BOOT_XEN_SCI) {
		free(disk);
		free(con);
		return scimg_int_err(env->ctx, -EINVAL, "a boot without its disk");
	}
	arg(a, "%s", env->qemu);
	arg(a, "-nodefaults");
	arg(a, "-no-user-config");
	arg(a, "-machine");
	arg(a, "%s", machine);
	arg(a, "-accel");
	arg(a, "%s", b->tcg ? "tcg" : "kvm");
	arg(a, "-cpu");
	arg(a, "%s", b->tcg ? "max" : "host");
	arg(a, "-m");
	arg(a, "%d", env->memory_mib + (b->xen ? SCIMG_BOOT_XEN_QEMU_MIB : 0));
	arg(a, "-smp");
	arg(a, "%d", b->xen ? 2 : 1);
	arg(a, "-no-reboot");
	arg(a, "-display");
	arg(a, "none");
	arg(a, "-vga");
	arg(a, "none");
	arg(a, "-monitor");
	arg(a, "none");
	arg(a, "-chardev");
	arg(a, "file,id=con0,path=%s", con);
	arg(a, "-serial");
	arg(a, "chardev:con0");
	/* a NIC as a cloud gives one, without network access and without a
	 * PXE ROM the firmware would try after the disk */
	if (!b->xen) {
		arg(a, "-netdev");
		arg(a, "user,id=n0,restrict=on");
		arg(a, "-device");
		arg(a, "virtio-net-pci,netdev=n0,romfile=");
	}
	if (b->fw == SCIMG_BOOT_FW_UEFI) {
		code = qemu_path(env->ovmf_code);
		vars = qemu_path(b->vars_path);
		if (!code || !vars)
			goto oom;
		arg(a, "-drive");
		arg(a, "if=pflash,format=raw,unit=0,readonly=on,file=%s", code);
		arg(a, "-drive");
		arg(a, "if=pflash,format=raw,unit=1,file=%s", vars);
	}
	if (b->xen) {
		r = xen_disks(env, b, a, disk);
		goto out;
	}
	/* snapshot=on: writes go to a temporary overlay in $TMPDIR */
	arg(a, "-drive");
	arg(a, "file=%s,format=%s,if=none,id=d0,snapshot=on,cache=unsafe,media=disk",
	    disk, env->disk_format);
	switch (b->bus) {
	case SCIMG_BOOT_BUS_IDE:
	case SCIMG_BOOT_BUS_SATA: /* q35's ide.0 is its AHCI controller */
		arg(a, "-device");
		arg(a, "ide-hd,drive=d0,bus=ide.0,bootindex=0");
		break;
	case SCIMG_BOOT_BUS_VIRTIO_BLK:
		arg(a, "-device");
		arg(a, "virtio-blk-pci,drive=d0,bootindex=0");
		break;
	case SCIMG_BOOT_BUS_VIRTIO_SCSI:
		arg(a, "-device");
		arg(a, "virtio-scsi-pci,id=scsi0");
		arg(a, "-device");
		arg(a, "scsi-hd,drive=d0,bus=scsi0.0,bootindex=0");
		break;
	case SCIMG_BOOT_BUS_NVME:
		arg(a, "-device");
		arg(a, "nvme,drive=d0,serial=scimg0,bootindex=0");
		break;
	default:
		r = scimg_int_err(env->ctx, -EINVAL, "unknown bus 0x%x", b->bus);
		goto out;
	}
	if (a->oom)
		goto oom;
	goto out;
oom:
	r = scimg_int_err(env->ctx, -ENOMEM, "out of memory building the QEMU command line");
out:
	free(disk);
	free(con);
	free(code);
	free(vars);
	return r;
}

/* ---- processes -------------------------------------------------------------- */

static int copy_file(struct scimg_ctx *ctx, const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	ssize_t n;

	if (in < 0)
		return scimg_int_err(ctx, -errno, "'%s': cannot open the UEFI variable store: %s",
				     from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		r = scimg_int_err(ctx, -errno, "'%s': cannot create: %s", to, strerror(errno));
		goto done;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, buf, (size_t)n) != n) {
			r = scimg_int_err(ctx, -EIO, "'%s': cannot copy to '%s': %s", from, to,
					  strerror(errno));
			break;
		}
	}
done:
	close(in);
	if (out >= 0)
		close(out);
	return r;
}

/* The environment for QEMU: ours with TMPDIR replaced. */
static char **make_envp(const char *tmpdir)
{
	size_t n = 0, j = 0;
	char **e;

	while (environ[n])
		n++;
	e = calloc(n + 2, sizeof(*e));
	if (!e)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "TMPDIR=", 7) != 0)
			e[j++] = environ[i];
	if (asprintf(&e[j], "TMPDIR=%s", tmpdir) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

static void free_envp(char **e)
{
	size_t n = 0;

	if (!e)
		return;
	while (e[n])
		n++;
	if (n)
		free(e[n - 1]); /* the TMPDIR entry, the only one we made */
	free(e);
}

static int start(struct scimg_boot_env *env, struct scimg_boot_one *b, char **envp,
		 unsigned idx)
{
	struct argv a;
	int logfd = -1, devnull = -1, r;
	pid_t pid;

	memset(&a, 0, sizeof(a));
	free(b->con_path);
	free(b->log_path);
	free(b->vars_path);
	b->con_path = b->log_path = b->vars_path = NULL;
	if (asprintf(&b->con_path, "%s/console-%u-%s-%s%s.log", env->tmpdir, idx,
		     b->xen ? scimg_int_boot_xen_name(b->xen) : scimg_int_boot_bus_name(b->bus),
		     scimg_int_boot_fw_name(b->fw),
		     b->tcg ? "" : "-kvm") < 0 ||
	    asprintf(&b->log_path, "%s/qemu-%u-%s-%s%s.log", env->tmpdir, idx,
		     b->xen ? scimg_int_boot_xen_name(b->xen) : scimg_int_boot_bus_name(b->bus),
		     scimg_int_boot_fw_name(b->fw),
		     b->tcg ? "" : "-kvm") < 0 ||
	    asprintf(&b->vars_path, "%s/vars-%u-%s%s.fd", env->tmpdir, idx,
		     b->xen ? scimg_int_boot_xen_name(b->xen) : scimg_int_boot_bus_name(b->bus),
		     b->tcg ? "" : "-kvm") < 0) {
		b->con_path = b->log_path = b->vars_path = NULL;
		return scimg_int_err(env->ctx, -ENOMEM, "out of memory");
	}
	if (b->fw == SCIMG_BOOT_FW_UEFI &&
	    (r = copy_file(env->ctx, env->ovmf_vars, b->vars_path)) < 0)
		return r;
	b->con_fd = open(b->con_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (b->con_fd < 0)
		return scimg_int_err(env->ctx, -errno, "'%s': cannot create the console file: %s",
				     b->con_path, strerror(errno));
	logfd = open(b->log_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || devnull < 0) {
		r = scimg_int_err(env->ctx, -errno, "'%s': cannot create the QEMU log: %s",
				  b->log_path, strerror(errno));
		goto fail;
	}
	if ((r = build_argv(env, b, &a)) < 0)
		goto fail;
	b->linelen = 0;
	b->esc = 0;
	b->ntail = 0;
	clock_gettime(CLOCK_MONOTONIC, &b->t0);
	pid = fork();
	if (pid < 0) {
		r = scimg_int_err(env->ctx, -errno, "cannot start '%s': %s", env->qemu, strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
		struct sigaction dfl;
		sigset_t none;

		/* only async-signal-safe calls from here on */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (size_t k = 0; k < SCIMG_ARRAY_SIZE(sigs); k++)
			sigaction(sigs[k], &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execve(env->qemu, a.v, envp);
		_exit(127);
	}
	setpgid(pid, pid); /* also here: no window in which a kill misses it */
	b->pid = pid;
	b->state = SCIMG_BOOT_RUNNING;
	r = 0;
	goto out;
fail:
	if (b->con_fd >= 0)
		close(b->con_fd);
	b->con_fd = -1;
out:
	if (logfd >= 0)
		close(logfd);
	if (devnull >= 0)
		close(devnull);
	argv_free(&a);
	return r;
}

static void read_console(struct matcher *m, struct scimg_boot_one *b)
{
	unsigned char buf[16384];
	ssize_t n;
	int rounds = 0;

	if (b->con_fd < 0)
		return;
	/* bounded per tick: a guest flooding its console cannot stall the others */
	while (rounds++ < 64 && (n = read(b->con_fd, buf, sizeof(buf))) > 0)
		feed(m, b, buf, (size_t)n);
}

/* Last non-empty line of a log (QEMU's own output: its error message; the
 * blanket build's log). */
void scimg_int_boot_last_line(const char *path, char *out, size_t outlen)
{
	char buf[2048];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;
	char *p, *e;

	out[0] = '\0';
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)sizeof(buf) - 1)
		lseek(fd, end - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	e = buf + n;
	while (e > buf && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
		*--e = '\0';
	p = strrchr(buf, '\n');
	p = p ? p + 1 : buf;
	n = (ssize_t)strlen(p);
	if ((size_t)n >= outlen)
		n = (ssize_t)outlen - 1;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
}

static int log_mentions_kvm(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strcasestr(buf, "kvm") != NULL;
}

static void stop(struct scimg_boot_one *b)
{
	int st;

	if (b->pid > 0) {
		kill(-b->pid, SIGKILL);
		kill(b->pid, SIGKILL);
		while (waitpid(b->pid, &st, 0) < 0 && errno == EINTR)
			;
		b->pid = 0;
	}
	if (b->con_fd >= 0)
		close(b->con_fd);
	b->con_fd = -1;
}

static void finish(struct scimg_boot_env *env, struct scimg_boot_one *b)
{
	stop(b);
	/* TCG on a busy host can be too slow for the kernel's early timer
	 * check ("IO-APIC + timer doesn't work"): that says nothing of the
	 * image, so it boots once more (its files made anew by start()) */
	if (b->tcg && b->retries == 0 && b->result == SCIMG_BOOT_RES_FAIL &&
	    strstr(b->reason, "timer doesn't work")) {
		b->retries++;
		if (b->con_path)
			unlink(b->con_path);
		if (b->log_path)
			unlink(b->log_path);
		if (b->vars_path)
			unlink(b->vars_path);
		b->result = SCIMG_BOOT_RES_NONE;
		b->reason[0] = '\0';
		b->state = SCIMG_BOOT_PENDING;
		return;
	}
	b->state = SCIMG_BOOT_DONE;
	if (env->done && !b->reported) {
		b->reported = 1;
		env->done(env->done_opaque, b);
	}
}

/* One tick for a running boot: read its console, see whether QEMU ended
 * or the time is up.  Returns 1 when the boot was started again with TCG
 * after KVM failed. */
static int poll_one(struct scimg_boot_env *env, struct matcher *m, struct scimg_boot_one *b,
		    int *kvm_failed)
{
	int st, timeout = b->xen ? (env->timeout ? env->timeout + SCIMG_BOOT_XEN_EXTRA_S
				    : SCIMG_BOOT_TIMEOUT_XEN)
			  : env->timeout ? env->timeout
			  : b->tcg ? SCIMG_BOOT_TIMEOUT_TCG : SCIMG_BOOT_TIMEOUT_KVM;
	pid_t w;

	read_console(m, b);
	if (b->result != SCIMG_BOOT_RES_NONE) {
		finish(env, b);
		return 0;
	}
	w = waitpid(b->pid, &st, WNOHANG);
	if (w == b->pid) {
		char last[300], what[600];

		b->pid = 0;
		read_console(m, b); /* what it wrote before it ended */
		if (b->linelen)
			end_line(m, b);
		if (b->result != SCIMG_BOOT_RES_NONE) {
			finish(env, b);
			return 0;
		}
		scimg_int_boot_last_line(b->log_path, last, sizeof(last));
		if (!b->tcg && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) && elapsed(&b->t0) < 60 &&
		    log_mentions_kvm(b->log_path)) {
			/* KVM is there but does not work: remember it, as the
			 * libguestfs launches do, and boot again with TCG */
			*kvm_failed = 1;
			snprintf(b->reason, sizeof(b->reason), "%s", last);
			stop(b);
			b->state = SCIMG_BOOT_PENDING;
			b->tcg = 1;
			return 1;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			snprintf(what, sizeof(what), "the guest reset or powered off before it "
				 "showed it had booted (qemu runs with -no-reboot)");
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			snprintf(what, sizeof(what), "'%s' could not be run%s%s", env->qemu,
				 last[0] ? ": " : "", last);
		else if (WIFEXITED(st))
			snprintf(what, sizeof(what), "qemu exited with status %d%s%.400s",
				 WEXITSTATUS(st), last[0] ? ": " : "", last);
		else
			snprintf(what, sizeof(what), "qemu was killed by signal %d",
				 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		set_result(b, SCIMG_BOOT_RES_FAIL, what, NULL);
		finish(env, b);
		return 0;
	}
	if (elapsed(&b->t0) >= timeout) {
		char what[SCIMG_BOOT_LINE_MAX + 100];
		const char *lastl = b->linelen ? (b->line[b->linelen] = '\0', b->line)
				    : b->ntail ? b->tail[(b->ntail - 1) % SCIMG_BOOT_TAIL_LINES] : NULL;

		if (lastl)
			snprintf(what, sizeof(what), "no sign of a booted system after %d s; the "
				 "console's last line", timeout);
		else
			snprintf(what, sizeof(what), "no console output in %d s", timeout);
		set_result(b, SCIMG_BOOT_RES_TIMEOUT, what, lastl);
		finish(env, b);
	}
	return 0;
}

int scimg_int_boot_run(struct scimg_boot_env *env, struct scimg_boot_one *b, size_t n, int jobs)
{
	struct matcher m;
	char **envp = NULL;
	int r = 0, told = 0;

	memset(&m, 0, sizeof(m));
	m.expect = env->expect;
	m.expect_src = env->expect_src;
	if ((r = matcher_init(env->ctx, &m)) < 0)
		goto out;
	envp = make_envp(env->tmpdir);
	if (!envp) {
		r = scimg_int_err(env->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		b[i].con_fd = -1;
		b[i].pid = 0;
		if (b[i].state == SCIMG_BOOT_PENDING)
			b[i].tcg = !env->kvm || b[i].xen;
	}
	if (jobs < 1)
		jobs = 1;
	for (;;) {
		int running = 0, pending = 0, kvm_failed = 0;

		if (env->ctx->cancelled) {
			r = scimg_int_check_cancel(env->ctx);
			break;
		}
		for (size_t i = 0; i < n; i++)
			running += b[i].state == SCIMG_BOOT_RUNNING;
		for (size_t i = 0; i < n && running < jobs; i++)
			if (b[i].state == SCIMG_BOOT_PENDING) {
				if ((r = start(env, &b[i], envp, (unsigned)i)) < 0)
					goto out;
				running++;
			}
		for (size_t i = 0; i < n; i++)
			if (b[i].state == SCIMG_BOOT_RUNNING)
				poll_one(env, &m, &b[i], &kvm_failed);
		if (kvm_failed) {
			char path[4096], msg[4096 + 600];
			size_t k;

			env->kvm = 0;
			scimg_int_kvm_remember_broken();
			for (k = 0; k < n && !(b[k].state == SCIMG_BOOT_PENDING && b[k].tcg && b[k].reason[0]); k++)
				;
			scimg_int_kvm_state_path(path, sizeof(path));
			snprintf(msg, sizeof(msg), "QEMU did not start with KVM (%.300s); booting with "
				 "TCG, which is slower (remembered until this machine reboots: "
				 "remove %s to try KVM again)", k < n ? b[k].reason : "", path);
			/* every boot not yet finished goes again with TCG */
			for (k = 0; k < n; k++) {
				b[k].reason[0] = '\0';
				if (b[k].state == SCIMG_BOOT_RUNNING) {
					stop(&b[k]);
					b[k].state = SCIMG_BOOT_PENDING;
				}
				if (b[k].state == SCIMG_BOOT_PENDING) {
					b[k].tcg = 1;
					b[k].result = SCIMG_BOOT_RES_NONE;
				}
			}
			if (!told && env->notice)
				env->notice(env->notice_opaque, msg);
			told = 1;
			continue;
		}
		pending = 0;
		for (size_t i = 0; i < n; i++)
			pending += b[i].state != SCIMG_BOOT_DONE;
		if (!pending)
			break;
		poll(NULL, 0, 100);
	}
out:
	/* cancelled or failed: every QEMU still running is killed and reaped */
	for (size_t i = 0; i < n; i++)
		if (b[i].state == SCIMG_BOOT_RUNNING)
			stop(&b[i]);
	for (size_t i = 0; i < n; i++) {
		free(b[i].con_path);
		free(b[i].log_path);
		free(b[i].vars_path);
		b[i].con_path = b[i].log_path = b[i].vars_path = NULL;
	}
	free_envp(envp);
	matcher_free(&m);
	return r;
}
