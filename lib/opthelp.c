/* opthelp.c - what each -o key of the built-in writers means and its
 * default (scimg_format_create_option_help, shown by "-o help").
 * tests/cli/test-help.sh checks that every key a writer accepts is here. */
#include <string.h>

#include "scimg-int.h"

#define END { NULL, NULL, NULL }

static const struct scimg_create_option raw_help[] = { END };

static const struct scimg_create_option qcow2_help[] = {
	{ "cluster_size", "qcow2 cluster size in bytes, a power of two from 512 to 2M", "65536" },
	{ "compression_type", "compression of compressed clusters (-c): zlib or zstd (zstd needs compat=1.1)", "zlib" },
	{ "refcount_bits", "width of a reference count: 1, 2, 4, 8, 16, 32 or 64 (16 with compat=0.10)", "16" },
	{ "lazy_refcounts", "set the lazy refcounts feature bit: on or off (compat=1.1 only)", "off" },
	{ "preallocation", "off (allocate as written), metadata (map every cluster), falloc (also fallocate the data), full (also write zeros)", "off" },
	{ "compat", "qcow2 version: 1.1 (version 3) or 0.10 (version 2, for old readers)", "1.1" },
	{ "backing_file", "backing file name, stored as given (scimg create -b, scimg convert -B; relative names resolve against the image's directory)", NULL },
	{ "backing_fmt", "format of the backing file, stored in the header", NULL },
	END
};

static const struct scimg_create_option vmdk_help[] = {
	{ "subformat", "monolithicSparse, streamOptimized (one compressed file, for import into vSphere/AWS) or monolithicFlat (descriptor plus -flat.vmdk)", "monolithicSparse" },
	{ "adapter_type", "ddb.adapterType: ide, lsilogic, buslogic, lsisas1068 (lsisas), pvscsi or legacyESX", "lsilogic" },
	{ "hwversion", "ddb.virtualHWVersion, 1 to 99", "4" },
	{ "toolsversion", "ddb.toolsVersion", "2147483647" },
	END
};

static const struct scimg_create_option vhd_help[] = {
	{ "subformat", "dynamic (sparse) or fixed (a footer after the data; Azure needs fixed with a whole MiB)", "dynamic" },
	{ "force_size", "on: keep the exact size instead of the CHS geometry's: on or off", "off" },
	END
};

static const struct scimg_create_option vhdx_help[] = {
	{ "block_size", "payload block size, a power of two from 1M to 256M", "32M" },
	{ "subformat", "dynamic (blocks allocated as written) or fixed (every block allocated)", "dynamic" },
	END
};

static const struct scimg_create_option ova_help[] = {
	{ "name", "virtual machine name in the OVF descriptor", "the output file's base name" },
	{ "cpus", "number of virtual CPUs, 1 to 768", "1" },
	{ "memory", "memory in MiB, 4 to 25165824", "1024" },
	{ "ostype", "OVF operating system type (vmw:osType), e.g. ubuntu64Guest", NULL },
	{ "hwversion", "virtual hardware version (vmx-N), 4 to 99", "14" },
	{ "adapter_type", "disk controller of the VM and the VMDK's ddb.adapterType", "lsilogic" },
	END
};

static const struct scimg_create_option gce_help[] = {
	{ "compression_level", "gzip level of the tar.gz, 1 to 9", "6" },
	END
};

static const struct scimg_create_option ami_help[] = {
	{ "cert", "your X.509 certificate, PEM file (required)", NULL },
	{ "privatekey", "the private key of cert, PEM file (required)", NULL },
	{ "ec2cert", "the EC2 bundling certificate of the region, PEM file (required)", NULL },
	{ "user", "your AWS account number (required)", NULL },
	{ "prefix", "name of the manifest and parts (PREFIX.manifest.xml, PREFIX.part.NN)", "image" },
	{ "arch", "i386, x86_64 or arm64", "x86_64" },
	{ "kernel", "kernel id (aki-...) recorded in the manifest", NULL },
	{ "ramdisk", "ramdisk id (ari-...) recorded in the manifest", NULL },
	{ "product_codes", "product codes, CODE;CODE...", NULL },
	{ "bdm", "block device mapping, VIRTUAL=DEVICE;... (e.g. ami=sda1;root=/dev/sda1)", NULL },
	{ "compression_level", "gzip level, 1 to 9", "6" },
	END
};

/* scimg convert -O sci (lib/sci-build.c), not a stream writer */
static const struct scimg_create_option sci_help[] = {
	{ "name", "image name in supercloud.xml", "the output file's base name" },
	{ "sign-key", "PEM private key to sign supercloud.xml with (with sign-cert)", NULL },
	{ "sign-cert", "PEM certificate of sign-key, stored in the signature", NULL },
	{ "guest", "fix (inject drivers and fix the boot), inspect (describe only) or skip", "fix" },
	{ "disk-format", "format of the disk inside the package: qcow2 or raw", "qcow2" },
	{ "verify", "boot the fixed disk before packaging (scimg boot-test) and record the boot "
		    "methods as measured: buses, bios/uefi, pygrub/pvgrub2 joined by '+'", NULL },
	{ "verify-expect", "with verify: a console line matching this POSIX extended regular "
			   "expression also proves a boot (boot-test --expect)", NULL },
	END
};

static const struct {
	const char *fmt;
	const struct scimg_create_option *opts;
} table[] = {
	{ "raw", raw_help }, { "qcow2", qcow2_help }, { "vmdk", vmdk_help },
	{ "vhd", vhd_help }, { "vhdx", vhdx_help }, { "ova", ova_help },
	{ "gce-tar", gce_help }, { "ami", ami_help }, { "sci", sci_help },
};

const struct scimg_create_option *scimg_format_create_option_help(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < SCIMG_ARRAY_SIZE(table); i++)
		if (!strcmp(table[i].fmt, name))
			return table[i].opts;
	return NULL;
}
