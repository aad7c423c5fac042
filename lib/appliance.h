/* appliance.h - starting a libguestfs appliance: KVM first, TCG when KVM
 * fails or hangs, remembered for the rest of the machine's boot. */
#ifndef SCIMG_APPLIANCE_H
#define SCIMG_APPLIANCE_H

#include <guestfs.h>

#include "scimg-int.h"

/* Adds drives and settings to a new handle; 0, or -1 with the libguestfs
 * error on G. */
typedef int (*scimg_gf_setup_fn)(guestfs_h *g, void *opaque);

struct scimg_gf_launch {
	const char *path;          /* the image, named in errors */
	scimg_gf_setup_fn setup;
	void *setup_opaque;
	/* told once per process when TCG is used after a KVM failure */
	void (*notice)(void *opaque, const char *msg);
	void *notice_opaque;
	/* out: KVM was not used because it failed (now or earlier) */
	int tcg_fallback;
};

/* Create a handle, let L->setup fill it and launch it.  KVM is tried first
 * unless LIBGUESTFS_BACKEND_SETTINGS has force_tcg or an earlier launch on
 * this machine since its last boot found KVM broken (a small state file,
 * $SCIMG_KVM_STATE or /tmp/scimg-kvm-UID; remove it to try KVM again).  A
 * KVM launch that fails, or does not answer within $SCIMG_KVM_LAUNCH_TIMEOUT
 * seconds (default 90; its QEMU is killed), is retried with TCG.  Returns 0
 * with *OUT set, or -errno with the error on CTX. */
int scimg_int_gf_launch(struct scimg_ctx *ctx, struct scimg_gf_launch *l,
			guestfs_h **out);

/* The remembered KVM finding, for the other users of QEMU (lib/boot):
 * whether a launch since this boot found KVM broken, record that it is,
 * the state file's path, and whether LIBGUESTFS_BACKEND_SETTINGS forces
 * TCG. */
int scimg_int_kvm_known_broken(void);
void scimg_int_kvm_remember_broken(void);
void scimg_int_kvm_state_path(char *buf, size_t n);
int scimg_int_env_forces_tcg(void);

#endif
