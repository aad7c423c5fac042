/* boot-int.h - internal interface of lib/boot: proof of boot under QEMU.
 *
 * boot-test.c prepares the image (content check, temporary qcow2 when QEMU
 * cannot read the format safely) and the list of boots; qemu.c runs them:
 * builds each QEMU command line, starts QEMU in its own process group,
 * reads its serial console and decides the result.  Nothing here prints.
 */
#ifndef SCIMG_BOOT_INT_H
#define SCIMG_BOOT_INT_H

#include <regex.h>
#include <sys/types.h>
#include <time.h>

#include "scimg-int.h"

#define SCIMG_BOOT_TAIL_LINES 20   /* console lines kept for the report */
#define SCIMG_BOOT_LINE_MAX 512    /* longer lines are split */
#define SCIMG_BOOT_TIMEOUT_TCG 300
#define SCIMG_BOOT_TIMEOUT_KVM 120
#define SCIMG_BOOT_MEMORY_MIB 512
/* a Xen PV boot: the blanket's Xen and dom0 start first, then the domU;
 * always TCG (nested Xen hangs under KVM here), dom0 1 GiB + the domU */
#define SCIMG_BOOT_TIMEOUT_XEN 900
#define SCIMG_BOOT_XEN_EXTRA_S 300    /* added to --timeout for a Xen boot */
#define SCIMG_BOOT_XEN_QEMU_MIB 1536  /* besides the domU's memory */

enum scimg_boot_state { SCIMG_BOOT_PENDING, SCIMG_BOOT_RUNNING, SCIMG_BOOT_DONE };
enum scimg_boot_res { SCIMG_BOOT_RES_NONE, SCIMG_BOOT_RES_OK, SCIMG_BOOT_RES_FAIL,
		      SCIMG_BOOT_RES_TIMEOUT };

/* One boot: one bus with one firmware. */
struct scimg_boot_one {
	unsigned bus;             /* one SCIMG_BOOT_BUS_* bit */
	unsigned fw;              /* one SCIMG_BOOT_FW_* bit */
	unsigned xen;             /* 0: HVM; else one SCIMG_BOOT_XEN_* bit (the
				     blanket boots with fw, the image is its
				     second disk) */
	int tcg;                  /* accelerator of the (last) run */
	enum scimg_boot_state state;
	enum scimg_boot_res result;
	char reason[640];
	double seconds;           /* from QEMU's start to the result */
	int reported;             /* boot_done was called */
	int retries;              /* runs again after an emulation timing panic */

	/* while running (qemu.c) */
	pid_t pid;                /* also its process group */
	int con_fd;               /* the serial console file, read as it grows */
	char *con_path, *log_path, *vars_path;
	struct timespec t0;
	char line[SCIMG_BOOT_LINE_MAX];
	size_t linelen;
	int esc;                  /* inside an escape sequence: 1 after ESC, 2 in CSI */
	char tail[SCIMG_BOOT_TAIL_LINES][SCIMG_BOOT_LINE_MAX];
	unsigned ntail;           /* lines pushed so far (ring of TAIL_LINES) */
};

/* What every boot shares. */
struct scimg_boot_env {
	struct scimg_ctx *ctx;
	const char *qemu;          /* absolute path of qemu-system-x86_64 */
	const char *ovmf_code, *ovmf_vars;
	const char *disk;          /* what QEMU opens, read-only with an overlay */
	const char *disk_format;   /* "raw" or "qcow2" */
	const char *blanket;       /* for Xen boots: the blanket disk, read-only */
	const char *blanket_format;
	const char *sci;           /* for --xen=sci: the package file itself */
	const char *carrier;       /* for --xen=direct: the raw tar of the guest's
				      kernel, initramfs and command line */
	const char *tmpdir;        /* private directory: overlays, consoles, vars */
	int memory_mib;
	int timeout;               /* seconds; 0: the default of the accelerator */
	int kvm;                   /* start with KVM */
	const regex_t *expect;     /* or NULL */
	const char *expect_src;
	scimg_notice_fn notice;
	void *notice_opaque;
	void (*done)(void *opaque, struct scimg_boot_one *b);
	void *done_opaque;
};

const char *scimg_int_boot_bus_name(unsigned bus);
const char *scimg_int_boot_fw_name(unsigned fw);
const char *scimg_int_boot_res_name(enum scimg_boot_res r);
const char *scimg_int_boot_xen_name(unsigned xen);  /* "pygrub", "pvgrub2", "direct" */
/* The last non-empty line of the file PATH (at most OUTLEN - 1 bytes). */
void scimg_int_boot_last_line(const char *path, char *out, size_t outlen);

/* Run the PENDING boots of B[0..N), at most JOBS at once, until each is
 * DONE; ENV->done is called for each as it ends.  Returns 0, or -errno
 * (-ECANCELED when ENV->ctx was cancelled: every QEMU is killed and
 * waited for before it returns). */
int scimg_int_boot_run(struct scimg_boot_env *env, struct scimg_boot_one *b,
		       size_t n, int jobs);

/* The console lines B kept, oldest first, as a new JSON array. */
json_object *scimg_int_boot_tail_json(const struct scimg_boot_one *b);

#endif
