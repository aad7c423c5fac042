/* appliance.c - start a libguestfs appliance, KVM first and TCG when KVM
 * fails or hangs.
 *
 * Nested KVM on CI runners and cloud VMs often exists but hangs or aborts
 * the appliance.  A KVM launch is watched: no answer after the timeout and
 * its QEMU is killed, then the launch is redone with TCG.  So that a
 * pipeline of many scimg commands pays that timeout once and not per
 * command, the finding is kept in a small per-user state file holding the
 * kernel's boot id: it holds until the machine reboots (or the file is
 * removed).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appliance.h"

#define KVM_LAUNCH_TIMEOUT 90

struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct scimg_ctx *ctx;
	int done;
	int fired;      /* the KVM timeout passed */
	int cancelled;  /* the context was cancelled (SIGINT/SIGTERM) */
	int timeout;    /* seconds; 0: no timeout (TCG) */
};

/* Kill the QEMU processes that are children of this process. */
static void kill_our_qemu(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t me = getpid();

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char p[300], buf[512], *rp;
		FILE *f;
		int ppid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(p, sizeof(p), "/proc/%s/stat", de->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		/* pid (comm) state ppid ... */
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid != me)
			continue;
		if (!strstr(buf, "(qemu"))
			continue;
		kill((pid_t)atoi(de->d_name), SIGKILL);
	}
	closedir(d);
}

/* Watches a launch, which libguestfs does not let us interrupt: kills its
 * QEMU when the KVM timeout passes or when the context is cancelled (a
 * signal), checked every second, until the launch returns. */
static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec start, ts;

	clock_gettime(CLOCK_REALTIME, &start);
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		clock_gettime(CLOCK_REALTIME, &ts);
		if (!w->cancelled && w->timeout && ts.tv_sec - start.tv_sec >= w->timeout)
			w->fired = 1;
		if (!w->fired && w->ctx->cancelled)
			w->cancelled = 1;
		/* again every second: QEMU may not have been started yet */
		if (w->fired || w->cancelled)
			kill_our_qemu();
		ts.tv_sec += 1;
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- the remembered finding ------------------------------------------- */

static void state_path(char *buf, size_t n)
{
	const char *e = getenv("SCIMG_KVM_STATE");

	if (e && *e)
		snprintf(buf, n, "%s", e);
	else
		snprintf(buf, n, "/tmp/scimg-kvm-%u", (unsigned)getuid());
}

static int boot_id(char *buf, size_t n)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	int ok;

	if (!f)
		return 0;
	ok = fgets(buf, (int)n, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok && buf[0];
}

/* Did a launch since this boot find KVM broken?  Only a regular file of
 * our own, not a link, is believed. */
static int kvm_known_broken(void)
{
	char path[4096], id[64], line[128];
	struct stat st;
	ssize_t n;
	int fd;

	state_path(path, sizeof(path));
	if (!boot_id(id, sizeof(id)))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
		close(fd);
		return 0;
	}
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	return strncmp(line, "kvm-broken ", 11) == 0 && strcmp(line + 11, id) == 0;
}

static void remember_kvm_broken(void)
{
	char path[4096], id[64], line[128];
	struct stat st;
	int fd, len;

	state_path(path, sizeof(path));
	if (!boot_id(id, sizeof(id)))
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid() &&
	    ftruncate(fd, 0) == 0) {
		len = snprintf(line, sizeof(line), "kvm-broken %s\n", id);
		if (write(fd, line, (size_t)len) != len)
			(void)unlink(path);
	}
	close(fd);
}

/* ---- launch ------------------------------------------------------------- */

static int env_forces_tcg(void)
{
	const char *s = getenv("LIBGUESTFS_BACKEND_SETTINGS");

	return s && strstr(s, "force_tcg") != NULL;
}

/* Append force_tcg to the handle's backend settings. */
static int set_force_tcg(guestfs_h *g)
{
	char **old = guestfs_get_backend_settings(g);
	char **nv;
	size_t n = 0, i;
	int r;

	if (!old)
		return -1;
	while (old[n])
		n++;
	nv = calloc(n + 2, sizeof(*nv));
	if (nv) {
		for (i = 0; i < n; i++)
			nv[i] = old[i];
		nv[n] = (char *)"force_tcg";
		r = guestfs_set_backend_settings(g, nv);
		free(nv);
	} else {
		r = -1;
	}
	for (i = 0; i < n; i++)
		free(old[i]);
	free(old);
	return r;
}

/* Kernel arguments for an appliance that runs under TCG.  QEMU keeps the
 * code it has translated by guest address: with address-space layout
 * randomisation every new process maps its libraries at new addresses and
 * all of its code is translated again, which makes fork+exec (the whole of
 * update-initramfs, grub-mkconfig, udev at boot) 3-5x slower under TCG.
 * Spectre mitigations (retpolines, RSB filling) add another ~25 %.  Both
 * only protect the appliance's own processes from each other, and the
 * appliance already runs the guest's programs as root: the boundary that
 * matters is the VM, which they do not touch. */
static const char tcg_append[] = "norandmaps mitigations=off";

static int set_tcg_append(guestfs_h *g)
{
	const char *old = guestfs_get_append(g);
	char *nv;
	int r;

	if (!old || !*old)
		return guestfs_set_append(g, tcg_append);
	if (asprintf(&nv, "%s %s", old, tcg_append) < 0)
		return -1;
	r = guestfs_set_append(g, nv);
	free(nv);
	return r;
}

static int gf_fail(struct scimg_ctx *ctx, const char *path, guestfs_h *g,
		   const char *what)
{
	const char *e = g ? guestfs_last_error(g) : NULL;
	int en = g ? guestfs_last_errno(g) : 0;

	return scimg_int_err(ctx, en > 0 ? -en : -EIO, "'%s': %s: %s", path, what,
			     e ? e : "libguestfs failed");
}

/* One handle, set up and launched.  *IN_LAUNCH: the failure was the launch
 * itself (not the setup); *FIRED: the watchdog killed it. */
static int launch_one(struct scimg_ctx *ctx, struct scimg_gf_launch *l, int tcg,
		      guestfs_h **out, int *in_launch, int *fired)
{
	struct watchdog w;
	const char *t = getenv("SCIMG_KVM_LAUNCH_TIMEOUT");
	guestfs_h *g = guestfs_create();
	pthread_t th;
	int r, have_th = 0;

	*out = NULL;
	*fired = 0;
	*in_launch = 0;
	if (!g)
		return scimg_int_err(ctx, -ENOMEM, "'%s': cannot create a libguestfs handle", l->path);
	guestfs_set_error_handler(g, NULL, NULL);
	if (tcg && set_force_tcg(g) == -1) {
		r = gf_fail(ctx, l->path, g, "selecting TCG");
		guestfs_close(g);
		return r;
	}
	if (l->setup(g, l->setup_opaque) == -1) {
		r = gf_fail(ctx, l->path, g, "setting up the libguestfs appliance");
		guestfs_close(g);
		return r;
	}
	if (tcg && set_tcg_append(g) == -1) {
		r = gf_fail(ctx, l->path, g, "setting the appliance's kernel arguments");
		guestfs_close(g);
		return r;
	}
	memset(&w, 0, sizeof(w));
	w.ctx = ctx;
	w.timeout = tcg ? 0 : t && atoi(t) > 0 ? atoi(t) : KVM_LAUNCH_TIMEOUT;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	have_th = pthread_create(&th, NULL, watchdog_main, &w) == 0;
	if (!have_th) {
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cond);
	}
	r = guestfs_launch(g);
	if (have_th) {
		pthread_mutex_lock(&w.lock);
		w.done = 1;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(th, NULL);
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cond);
	}
	if (r == -1 && w.cancelled) {
		guestfs_close(g);
		return scimg_int_check_cancel(ctx);
	}
	if (r == -1) {
		*in_launch = 1;
		*fired = w.fired;
		r = w.fired ? scimg_int_err(ctx, -ETIMEDOUT, "'%s': no answer from the appliance after %d s",
					     l->path, w.timeout)
			    : gf_fail(ctx, l->path, g, tcg ? "starting the libguestfs appliance (TCG)"
							    : "starting the libguestfs appliance (KVM)");
		guestfs_close(g);
		return r;
	}
	*out = g;
	return 0;
}

/* Pass MSG to L's notice callback, the first time in this process only. */
static void notice_once(struct scimg_gf_launch *l, const char *msg)
{
	static pthread_mutex_t told_lock = PTHREAD_MUTEX_INITIALIZER;
	static int told;
	int tell;

	pthread_mutex_lock(&told_lock);
	tell = !told;
	told = 1;
	pthread_mutex_unlock(&told_lock);
	if (tell && l->notice)
		l->notice(l->notice_opaque, msg);
}

int scimg_int_gf_launch(struct scimg_ctx *ctx, struct scimg_gf_launch *l,
			guestfs_h **out)
{
	char first[600], msg[4096 + 700], path[4096];
	int forced = env_forces_tcg(), known = !forced && kvm_known_broken();
	int fired, in_launch, r;

	l->tcg_fallback = known;
	r = launch_one(ctx, l, forced || known, out, &in_launch, &fired);
	if (r == 0 || forced || known || !in_launch) {
		if (r == 0 && known) {
			state_path(path, sizeof(path));
			snprintf(msg, sizeof(msg),
				 "using TCG for the libguestfs appliance: KVM failed for an "
				 "earlier launch since this machine booted (remove %s to try "
				 "KVM again)", path);
			notice_once(l, msg);
		}
		return r;
	}
	if (r == -ENOMEM || r == -ECANCELED)
		return r;
	snprintf(first, sizeof(first), "%s", scimg_ctx_errmsg(ctx));
	first[strcspn(first, "\n")] = '\0'; /* libguestfs adds a paragraph of advice */
	if (first[0] && first[strlen(first) - 1] == '.')
		first[strlen(first) - 1] = '\0';
	scimg_ctx_clear_error(ctx);
	l->tcg_fallback = 1;
	snprintf(msg, sizeof(msg),
		 "the libguestfs appliance did not start with KVM (%s); retrying "
		 "with TCG, which is slower", fired ? "no answer after the launch timeout" : first);
	notice_once(l, msg);
	r = launch_one(ctx, l, 1, out, &in_launch, &fired);
	if (r < 0)
		scimg_int_err_prefix(ctx, "after KVM failed (%s)", first);
	else
		remember_kvm_broken(); /* TCG works where KVM did not */
	return r;
}

/* ---- for lib/boot ------------------------------------------------------- */

int scimg_int_kvm_known_broken(void)
{
	return kvm_known_broken();
}

void scimg_int_kvm_remember_broken(void)
{
	remember_kvm_broken();
}

void scimg_int_kvm_state_path(char *buf, size_t n)
{
	state_path(buf, n);
}

int scimg_int_env_forces_tcg(void)
{
	return env_forces_tcg();
}

void scimg_int_strv_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}
