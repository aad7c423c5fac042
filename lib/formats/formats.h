/* formats.h - the format drivers known to the registry. */
#ifndef SCIMG_FORMATS_H
#define SCIMG_FORMATS_H

#include "scimg-int.h"

extern const struct scimg_format scimg_format_qcow2;
extern const struct scimg_format scimg_format_vhd;
extern const struct scimg_format scimg_format_vhdx;
extern const struct scimg_format scimg_format_raw;
extern const struct scimg_format scimg_format_ami;
extern const struct scimg_format scimg_format_vmdk;
extern const struct scimg_format scimg_format_sci;
extern const struct scimg_format scimg_format_ova;
extern const struct scimg_format scimg_format_gce;

#endif
