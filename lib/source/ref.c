/* source/ref.c - open the files an image names.
 *
 * An image is untrusted: the files it names (backing file, parent, external
 * data file, extent, AMI part) are opened only inside the directory tree of
 * the image the user named (the chain's root), after following symlinks,
 * as regular files, never blocking and never from a URL when the image is
 * local.  A remote image may name only relative URLs of its own origin.
 * SCIMG_CTX_TRUST_CHAIN lifts the place restrictions (absolute names, "..",
 * URLs) but never the file-type ones.
 *
 * A refusal says why in terms of the name alone ("an absolute file name",
 * "leaves the directory"), never anything about the file it names.
 */

#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scimg-int.h"

#define TRUST_HINT "--trust-chain allows it"

static int refuse(struct scimg_ctx *ctx, const char *why, const char *root)
{
	if (root)
		return scimg_int_err(ctx, -EPERM,
				     "refused: %s (only files inside '%s' are opened; " TRUST_HINT ")",
				     why, root);
	return scimg_int_err(ctx, -EPERM, "refused: %s (" TRUST_HINT ")", why);
}

/* A name with a URL scheme ("http://", "file://"), or a QEMU protocol
 * prefix ("json:{...}", "nbd:host:port", "file:x"): not a plain file name.
 * A backing file name is also handed to QEMU (libguestfs opens qcow2 in
 * place), which would take such a prefix as a protocol. */
static int name_is_protocol(const char *name)
{
	static const char *const qemu_protocols[] = {
		"json", "file", "nbd", "nbds", "nbd+unix", "http", "https", "ftp",
		"ftps", "ssh", "iscsi", "iser", "rbd", "gluster", "gluster+tcp",
		"gluster+unix", "gluster+rdma", "nfs", "sheepdog", "vxhs", "null-co",
		"null-aio", "blkdebug", "blkverify", "quorum", "throttle",
		"host_device", "host_cdrom", "fat", "vvfat", "tftp", "vdi", "raw",
		"qcow2", "vmdk", "vpc", "vhdx", "luks", "copy-on-read", "replication",
		"compress", "nvme", "nvme-io_uring", "io_uring", "blkreplay",
	};
	const char *p = name;
	size_t n;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return 0;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	       (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.' ||
	       *p == '_')
		p++;
	if (*p != ':')
		return 0;
	if (p[1] == '/' && p[2] == '/')
		return 1;
	n = (size_t)(p - name);
	for (size_t i = 0; i < SCIMG_ARRAY_SIZE(qemu_protocols); i++)
		if (strlen(qemu_protocols[i]) == n && !strncasecmp(name, qemu_protocols[i], n))
			return 1;
	return 0;
}

/* DIR/NAME (NAME not absolute), or NAME when DIR is NULL or ".". */
static char *join(const char *dir, const char *name)
{
	size_t n;
	char *p;

	if (!dir || !strcmp(dir, "."))
		return strdup(name);
	n = strlen(dir) + 1 + strlen(name) + 1;
	p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", dir,
			 dir[strlen(dir) - 1] == '/' ? "" : "/", name);
	return p;
}

/* The directory part of a root-relative path ("." for a bare name). */
static char *rel_dirname(const char *rel)
{
	const char *s = rel ? strrchr(rel, '/') : NULL;

	return s ? strndup(rel, (size_t)(s - rel)) : strdup(".");
}

/* Whether PATH (absolute, from /proc/self/fd) is ROOT or inside it. */
static int path_inside(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return 1;
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* Open REL below the chain's root directory as an O_PATH descriptor, never
 * leaving it (symlinks included).  -EXDEV when it would leave. */
static int open_beneath(const struct scimg_chain *c, const char *rel)
{
	struct open_how how;
	char link[64], real[PATH_MAX], rroot[PATH_MAX];
	ssize_t n;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, c->root_fd, rel, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS && errno != EPERM && errno != E2BIG)
		return -errno;
	/* no openat2 (old kernel, seccomp): open, then check where it is */
	fd = openat(c->root_fd, rel, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%ld", fd);
	n = readlink(link, real, sizeof(real) - 1);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", c->root_fd);
	if (n < 0 || !realpath(link, rroot)) {
		close((int)fd);
		return -EXDEV; /* cannot prove it is inside: refuse */
	}
	real[n] = 0;
	if (!path_inside(real, rroot)) {
		close((int)fd);
		return -EXDEV;
	}
	return (int)fd;
}

const char *scimg_int_file_type_name(mode_t m)
{
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a regular file";
}

int scimg_int_fd_reopen(int pathfd, const struct stat *st)
{
	char link[64];
	struct stat st2;
	int fd;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", pathfd);
	fd = open(link, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st2) < 0 || st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
		close(fd);
		return -ESTALE;
	}
	/* regular files and block devices never block; clear it anyway */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Percent-encode NAME (a relative file name inside a remote image) for use
 * in a URL path: everything but unreserved characters and '/', so that a
 * name never adds a query, a fragment or an authority. */
static char *url_escape_path(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(name), i;
	char *p = malloc(n * 3 + 1), *w = p;

	if (!p)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~' || ch == '/') {
			*w++ = (char)ch;
		} else {
			*w++ = '%';
			*w++ = hex[ch >> 4];
			*w++ = hex[ch & 15];
		}
	}
	*w = '\0';
	return p;
}

int scimg_int_url_resolve(struct scimg_ctx *ctx, const char *dir, const char *name,
			  char **out)
{
	CURLU *u = curl_url();
	char *base = join(dir, ""), *esc, *url = NULL;
	int ret = 0;

	/* "//host/x" would name another server: one leading slash at most */
	while (name[0] == '/' && name[1] == '/')
		name++;
	esc = url_escape_path(name);

	*out = NULL;
	if (!u || !base || !esc) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, esc, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s' is not a valid reference inside '%s'",
				    name, dir);
		goto out;
	}
	if (!(*out = strdup(url)))
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
out:
	curl_free(url);
	curl_url_cleanup(u);
	free(base);
	free(esc);
	return ret;
}

/* Resolve NAME against the remote PARENT source: relative references only,
 * and the result must keep the origin of the chain's root. */
static int remote_ref(struct scimg_image *parent, const char *name, int trusted,
		      char **out)
{
	struct scimg_ctx *ctx = parent->ctx;
	char *origin = NULL;
	int ret;

	*out = NULL;
	if (name_is_protocol(name) || scimg_int_name_is_url(name)) {
		if (!trusted)
			return refuse(ctx, "a URL (an image read over the network may name only files on its own server)", NULL);
		if (!scimg_int_name_is_url(name))
			return scimg_int_err(ctx, -EPROTONOSUPPORT,
					     "refused: only http:// and https:// URLs are supported");
		*out = strdup(name);
		return *out ? 0 : scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	ret = scimg_int_url_resolve(ctx, parent->src->dir, name, out);
	if (ret < 0)
		return ret;
	ret = scimg_int_url_origin(ctx, *out, &origin);
	if (ret == 0 && parent->chain->origin && strcmp(origin, parent->chain->origin) != 0)
		ret = refuse(ctx, "it leaves the image's web server", NULL);
	free(origin);
	if (ret < 0) {
		free(*out);
		*out = NULL;
	}
	return ret;
}

int scimg_int_url_origin(struct scimg_ctx *ctx, const char *url, char **out)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	size_t n;
	int ret = 0;

	*out = NULL;
	if (!u)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		ret = scimg_int_err(ctx, -EINVAL, "not a valid URL");
		goto out;
	}
	n = strlen(scheme) + strlen(host) + strlen(port) + 5;
	*out = malloc(n);
	if (!*out) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(*out, n, "%s://%s:%s", scheme, host, port);
	for (char *p = *out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ret;
}

int scimg_int_chain_set_root(struct scimg_ctx *ctx, struct scimg_chain *c,
			     const struct scimg_source *top)
{
	c->root_fd = -1;
	if (strcmp(top->ops->name, "http") == 0)
		return scimg_int_url_origin(ctx, top->name, &c->origin);
	if (strcmp(top->ops->name, "file") != 0)
		return 0; /* a window: no files beside it */
	c->root = strdup(top->dir);
	if (!c->root)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	c->root_fd = open(top->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->root_fd < 0)
		return scimg_int_err(ctx, -errno, "'%s': %s", top->dir, strerror(errno));
	return 0;
}

int scimg_int_ref_open(struct scimg_image *parent, const char *name,
		       struct scimg_source **out)
{
	struct scimg_ctx *ctx = parent->ctx;
	struct scimg_source *psrc = parent->src;
	struct scimg_chain *c = parent->chain;
	int trusted = (ctx->flags & SCIMG_CTX_TRUST_CHAIN) != 0;
	char *path = NULL, *rel = NULL, *pdir = NULL;
	struct stat st;
	int pfd = -1, fd = -1, ret;

	*out = NULL;
	if (!(ctx->flags & SCIMG_CTX_ALLOW_BACKING))
		return scimg_int_err(ctx, -EPERM,
				     "refused: opening referenced files is not allowed");
	if (!*name)
		return scimg_int_err(ctx, -EINVAL, "an empty file name");
	if (strlen(name) >= PATH_MAX)
		return scimg_int_err(ctx, -ENAMETOOLONG, "a file name longer than %d bytes", PATH_MAX);
	if (!psrc || !c)
		return scimg_int_err(ctx, -EINVAL, "no file to resolve names against");

	if (scimg_int_name_is_url(psrc->dir)) {
		/* inside a remote image: URLs of the same origin only */
		ret = remote_ref(parent, name, trusted, &path);
		if (ret == 0)
			ret = scimg_int_http_source_open(ctx, path, out);
		goto done;
	}
	if (name_is_protocol(name) || scimg_int_name_is_url(name)) {
		if (!trusted) {
			ret = refuse(ctx, "a URL or protocol, and the image is a local file", NULL);
			goto done;
		}
		if (!scimg_int_name_is_url(name)) {
			ret = scimg_int_err(ctx, -EPROTONOSUPPORT,
					    "refused: a protocol prefix; only http:// and https:// URLs are supported");
			goto done;
		}
		ret = scimg_int_http_source_open(ctx, name, out);
		goto done;
	}

	if (!trusted && c->root_fd < 0) {
		ret = refuse(ctx, "the image is not a file that other files can be beside", NULL);
		goto done;
	}
	if (trusted || !psrc->rel) {
		if (!trusted) {
			ret = refuse(ctx, "it leaves the image's directory", c->root);
			goto done;
		}
		path = name[0] == '/' ? strdup(name) : join(psrc->dir, name);
		if (!path) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto done;
		}
		pfd = open(path, O_PATH | O_CLOEXEC);
		if (pfd < 0) {
			ret = scimg_int_err(ctx, -errno, "could not open '%s': %s", path, strerror(errno));
			goto done;
		}
	} else {
		if (name[0] == '/') {
			ret = refuse(ctx, "an absolute file name", c->root);
			goto done;
		}
		pdir = rel_dirname(psrc->rel);
		rel = pdir ? join(pdir, name) : NULL;
		path = rel ? join(c->root, rel) : NULL;
		if (!rel || !path) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto done;
		}
		pfd = open_beneath(c, rel);
		if (pfd == -EXDEV || pfd == -ELOOP) {
			ret = refuse(ctx, "it leaves the image's directory", c->root);
			goto done;
		}
		if (pfd < 0) {
			ret = scimg_int_err(ctx, pfd, "could not open '%s': %s", path, strerror(-pfd));
			goto done;
		}
	}
	if (fstat(pfd, &st) < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode) && !(trusted && S_ISBLK(st.st_mode))) {
		ret = scimg_int_err(ctx, -EPERM, "refused: '%s' is %s, not a regular file",
				    path, scimg_int_file_type_name(st.st_mode));
		goto done;
	}
	fd = scimg_int_fd_reopen(pfd, &st);
	if (fd < 0) {
		ret = scimg_int_err(ctx, fd, "could not open '%s': %s", path, strerror(-fd));
		goto done;
	}
	ret = scimg_int_source_from_fd(ctx, fd, path, &st, out);
	fd = -1;
	if (ret == 0 && rel && !trusted) {
		(*out)->rel = rel;
		rel = NULL;
	}
done:
	if (ret == 0)
		ret = scimg_int_chain_note(parent, *out);
	if (ret < 0 && *out) {
		scimg_int_source_close(*out);
		*out = NULL;
	}
	if (pfd >= 0)
		close(pfd);
	if (fd >= 0)
		close(fd);
	free(path);
	free(rel);
	free(pdir);
	return ret;
}
