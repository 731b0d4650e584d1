/* Running helper programs (qemu-img, mkfs.ext4, tar ...) from the host side: argv only, never a
 * shell; their stderr is captured into the error message when they fail. */
#ifndef GODWIT_PROC_H
#define GODWIT_PROC_H

#include <stddef.h>

#include "godwit/err.h"

/* Run argv[0] (PATH lookup) and wait. Non-zero exit → -EIO with the program's first stderr
 * line in err. */
int gw_run(char *const argv[], struct gw_err *err);

/* The same with input (len bytes) as the program's stdin, e.g. a script for `nft -f
 * /dev/stdin`. */
int gw_run_input(char *const argv[], const void *input, size_t len, struct gw_err *err);

#endif
