/* test-sink.c - files made beside an output sink (lib/source/sink.c,
 * scimg_int_sink_add_file): the names refused, the sinks that cannot have
 * files beside them, the hidden temporary name until commit, and removal
 * on discard (before and after the rename); files made inside a directory
 * sink (scimg_int_sink_dir_create, _dir_rename): the names refused, never
 * an existing file or a symbolic link, the umask applied. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scimg-int.h"
#include "unit.h"

static char dir[] = "/tmp/scimg-test-sink-XXXXXX";

/* Number of entries in DIR, and whether one starts with PREFIX. */
static int entries(const char *prefix, int *has_prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	*has_prefix = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (prefix && !strncmp(e->d_name, prefix, strlen(prefix)))
			*has_prefix = 1;
	}
	closedir(d);
	return n;
}

static int exists(const char *name)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static int has_msg(struct scimg_ctx *ctx, const char *part)
{
	const char *m = scimg_ctx_errmsg(ctx);

	return m && strstr(m, part) != NULL;
}

int main(void)
{
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct scimg_sink s, win, *f = NULL, *g = NULL;
	char out[256], fifo[256], buf[8] = { 0 };
	int fd, hidden, n;

	if (!ctx || !mkdtemp(dir)) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	snprintf(out, sizeof(out), "%s/out.vmdk", dir);
	fd = open(out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	CHECK(fd >= 0);
	scimg_int_sink_file(&s, fd, out, 0, 0);

	/* names: not empty, no '/', not the output's own, not twice */
	CHECK(scimg_int_sink_add_file(ctx, &s, "", NULL, &f) == -EINVAL && !f);
	CHECK(has_msg(ctx, "bad companion file name"));
	CHECK(scimg_int_sink_add_file(ctx, &s, "a/b", NULL, &f) == -EINVAL && !f);
	CHECK(scimg_int_sink_add_file(ctx, &s, "out.vmdk", NULL, &f) == -EINVAL && !f);
	CHECK(has_msg(ctx, "companion file has the same name"));
	CHECK(scimg_int_sink_add_file(ctx, &s, "out-flat.vmdk", NULL, &f) == 0 && f);
	CHECK(scimg_int_sink_add_file(ctx, &s, "out-flat.vmdk", NULL, &g) == -EINVAL && !g);
	CHECK(has_msg(ctx, "made twice"));

	/* written under a hidden name until committed */
	CHECK(f && scimg_int_sink_pwrite(ctx, f, "flat", 4, 2) == 0);
	CHECK(!exists("out-flat.vmdk"));
	n = entries(".out-flat.vmdk.scimg-", &hidden);
	CHECK(n == 2 && hidden);

	/* an existing FIFO is never replaced */
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	CHECK(scimg_int_sink_add_file(ctx, &s, "fifo", NULL, &g) == -EPERM && !g);
	CHECK(has_msg(ctx, "is a FIFO; refusing to replace it"));
	unlink(fifo);

	/* a container member, a directory, a target written in place: none */
	scimg_int_sink_window(&win, &s, 512, "member.vmdk");
	CHECK(win.member && !win.files);
	CHECK(scimg_int_sink_add_file(ctx, &win, "x.vmdk", NULL, &g) == -ENOTSUP && !g);
	win = s;
	win.files = NULL;
	win.inplace = 1;
	CHECK(scimg_int_sink_add_file(ctx, &win, "x.vmdk", NULL, &g) == -ENOTSUP && !g);
	CHECK(has_msg(ctx, "cannot be written beside a target written in place"));
	win.inplace = 0;
	win.isdir = 1;
	CHECK(scimg_int_sink_add_file(ctx, &win, "x.vmdk", NULL, &g) == -ENOTSUP && !g);

	/* commit: renamed into place, content kept */
	CHECK(scimg_int_sink_files_commit(ctx, &s, 0) == 0);
	CHECK(exists("out-flat.vmdk"));
	n = entries(".out-flat.vmdk.scimg-", &hidden);
	CHECK(n == 2 && !hidden);
	{
		char p[256];
		int rfd;

		snprintf(p, sizeof(p), "%s/out-flat.vmdk", dir);
		rfd = open(p, O_RDONLY | O_CLOEXEC);
		CHECK(rfd >= 0 && pread(rfd, buf, 6, 0) == 6 && !memcmp(buf, "\0\0flat", 6));
		if (rfd >= 0)
			close(rfd);
	}
	/* discarded after the rename (the main file failed): removed */
	scimg_int_sink_files_release(&s, 1);
	CHECK(!exists("out-flat.vmdk") && !s.files);

	/* discarded before the commit: the temporary file is removed */
	CHECK(scimg_int_sink_add_file(ctx, &s, "b.vmdk", NULL, &f) == 0);
	n = entries(".b.vmdk.scimg-", &hidden);
	CHECK(n == 2 && hidden);
	scimg_int_sink_files_release(&s, 1);
	n = entries(NULL, &hidden);
	CHECK(n == 1);

	/* kept after a commit without discard */
	CHECK(scimg_int_sink_add_file(ctx, &s, "c.vmdk", NULL, &f) == 0);
	CHECK(scimg_int_sink_files_commit(ctx, &s, 1) == 0);
	scimg_int_sink_files_release(&s, 0);
	CHECK(exists("c.vmdk"));

	/* files inside a directory sink: plain new names only */
	{
		struct scimg_sink d;
		struct stat st;
		char p[256];
		mode_t um;
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), pfd = 7;

		CHECK(dfd >= 0);
		scimg_int_sink_file(&d, dfd, dir, 0, 1);
		CHECK(scimg_int_sink_dir_create(ctx, &d, "", "part", &pfd) == -EINVAL && pfd == -1);
		CHECK(has_msg(ctx, "bad file name ''"));
		CHECK(scimg_int_sink_dir_create(ctx, &d, "a/b", NULL, &pfd) == -EINVAL && pfd == -1);
		CHECK(scimg_int_sink_dir_create(ctx, &d, ".", NULL, &pfd) == -EINVAL);
		CHECK(scimg_int_sink_dir_create(ctx, &d, "..", NULL, &pfd) == -EINVAL);
		CHECK(scimg_int_sink_dir_rename(ctx, &d, "c.vmdk", "../c.vmdk") == -EINVAL);
		CHECK(exists("c.vmdk"));
		/* not a directory sink: refused */
		CHECK(scimg_int_sink_dir_create(ctx, &s, "x.part.0", NULL, &pfd) == -ENOTSUP && pfd == -1);
		/* an existing file (or a symbolic link) is never opened */
		CHECK(scimg_int_sink_dir_create(ctx, &d, "c.vmdk", "part", &pfd) == -EEXIST && pfd == -1);
		CHECK(has_msg(ctx, "could not create part 'c.vmdk'"));
		snprintf(p, sizeof(p), "%s/link", dir);
		CHECK(symlink("c.vmdk", p) == 0);
		CHECK(scimg_int_sink_dir_create(ctx, &d, "link", NULL, &pfd) == -EEXIST);
		CHECK(has_msg(ctx, "could not create 'link'"));
		unlink(p);
		/* made with mode 0666 less the umask, writable, renamed inside */
		um = umask(027);
		CHECK(scimg_int_sink_dir_create(ctx, &d, "x.part.0", "part", &pfd) == 0 && pfd >= 0);
		umask(um);
		CHECK(pfd >= 0 && write(pfd, "ami", 3) == 3 && fstat(pfd, &st) == 0 &&
		      (st.st_mode & 0777) == 0640);
		if (pfd >= 0)
			close(pfd);
		CHECK(scimg_int_sink_dir_rename(ctx, &d, "x.part.0", "x.part.00") == 0);
		CHECK(!exists("x.part.0") && exists("x.part.00"));
		snprintf(p, sizeof(p), "%s/x.part.00", dir);
		unlink(p);
		if (dfd >= 0)
			close(dfd);
	}

	close(fd);
	unlink(out);
	snprintf(out, sizeof(out), "%s/c.vmdk", dir);
	unlink(out);
	rmdir(dir);
	scimg_ctx_free(ctx);
	UNIT_DONE();
}
