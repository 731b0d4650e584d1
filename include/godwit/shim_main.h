/* The shim's entry point, for the two programs that start one: godwit-shim (src/shim/main.c)
 * and the CLI's hidden `__shim` command. One shim per container owns its VM. */
#ifndef GODWIT_SHIM_MAIN_H
#define GODWIT_SHIM_MAIN_H

/* What the shim takes from its command line before `__shim` (the CLI's global options). */
struct shim_opts {
	const char *root;	/* the state directory */
	const char *accel;	/* auto|kvm|tcg */
	const char *kernel;	/* NULL = the guest kit's */
	const char *initrd;	/* NULL = the guest kit's */
};

/* Run the shim for argv (argv[0] = "__shim", then its flags and the container's name); returns
 * the process exit status (GW_EXIT_ERROR for bad arguments). */
int shim_main(const struct shim_opts *o, int argc, char **argv);

#endif
