/* Persistent taps for containers (include/godwit/hostnet.h): made through /dev/net/tun with
 * TUNSETPERSIST, so that the tap outlives this process and QEMU opens it by name later; then
 * put on the network's bridge through netlink, up, or down (sealed: the bridge's port of a
 * down link is disabled, so no frame passes either way) until a migration's COMMIT. */
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/if.h>
#include <linux/if_tun.h>

#include "godwit/util.h"
#include "hostnet_int.h"

/* a tap name godwit made: "gwt" and 12 hex digits (taps are deleted by name: never another's) */
static int tap_name_ok(const char *tap)
{
	return strnlen(tap, GW_IFNAME_MAX) == 15 && !strncmp(tap, "gwt", 3) &&
	       strspn(tap + 3, "0123456789abcdef") == 12;
}

static int tap_make(const char *tap, struct gw_err *err)
{
	cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "create tap %s: open /dev/net/tun", tap);
	struct ifreq ifr = { 0 };
	memcpy(ifr.ifr_name, tap, strlen(tap));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI; /* QEMU sets its own features when it attaches */
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return gw_err_sys(err, errno, "create tap %s", tap);
	if (ioctl(fd, TUNSETPERSIST, 1) < 0)
		return gw_err_sys(err, errno, "make tap %s persistent", tap);
	return 0;
}

int gw_tap_set_owner(const char *tap, uid_t uid, gid_t gid, struct gw_err *err)
{
	if (!tap_name_ok(tap))
		return gw_err_set(err, EINVAL, "bad tap name \"%.20s\"", tap);
	cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "tap %s: open /dev/net/tun", tap);
	struct ifreq ifr = { 0 };
	memcpy(ifr.ifr_name, tap, strlen(tap));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return gw_err_sys(err, errno, "attach to tap %s", tap);
	if (ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0 ||
	    ioctl(fd, TUNSETGROUP, (unsigned long)gid) < 0)
		return gw_err_sys(err, errno, "give tap %s to uid %u", tap, (unsigned)uid);
	return 0;
}

int gw_tap_create(const char *tap, const char *bridge, int sealed, struct gw_err *err)
{
	if (!tap_name_ok(tap))
		return gw_err_set(err, EINVAL, "bad tap name \"%.20s\"", tap);
	int made = 0, r = 0;
	if (!hn_link_index(tap)) {
		if ((r = tap_make(tap, err)) < 0)
			return r;
		made = 1;
	}
	r = hn_link_set(tap, bridge, !sealed, err);
	if (r < 0 && made)
		hn_link_del(tap, NULL);
	return r;
}

int gw_tap_unseal(const char *tap, struct gw_err *err)
{
	if (!tap_name_ok(tap))
		return gw_err_set(err, EINVAL, "bad tap name \"%.20s\"", tap);
	return hn_link_set(tap, NULL, 1, err);
}

int gw_tap_delete(const char *tap, struct gw_err *err)
{
	if (!tap_name_ok(tap))
		return gw_err_set(err, EINVAL, "bad tap name \"%.20s\"", tap);
	return hn_link_del(tap, err);
}
