/* Helpers shared by several subsystems (include/godwit/util.h): whole-file I/O, directory
 * trees, time formatting and the size/duration parsers used by flags. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "godwit/util.h"

int gw_json_streq(struct json_object *v, const char *s)
{
	return v && json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), s);
}

int gw_read_file(const char *path, size_t max, char **out, size_t *len, struct gw_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return gw_err_sys(err, errno, "stat %s", path);
	if ((uint64_t)st.st_size > max)
		return gw_err_set(err, EFBIG, "%s: larger than %zu bytes", path, max);
	size_t cap = (size_t)st.st_size + 1, n = 0;
	cleanup_free char *buf = malloc(cap);
	if (!buf)
		return gw_err_set(err, ENOMEM, "read %s: out of memory", path);
	for (;;) {
		if (n + 1 >= cap) {
			if (n > max)
				return gw_err_set(err, EFBIG, "%s: larger than %zu bytes", path, max);
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				return gw_err_set(err, ENOMEM, "read %s: out of memory", path);
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return gw_err_sys(err, errno, "read %s", path);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max)
		return gw_err_set(err, EFBIG, "%s: larger than %zu bytes", path, max);
	buf[n] = '\0';
	if (len)
		*len = n;
	*out = steal_ptr(buf);
	return 0;
}

/* The one loop behind gw_{p,}{read,write}_full: off < 0 reads/writes at the file position. */
static int io_full(int fd, void *buf, size_t len, int64_t off, int writing)
{
	char *p = buf;
	while (len) {
		ssize_t n = writing ? (off < 0 ? write(fd, p, len) : pwrite(fd, p, len, (off_t)off))
				    : (off < 0 ? read(fd, p, len) : pread(fd, p, len, (off_t)off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && !writing)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int gw_write_full(int fd, const void *buf, size_t len)
{
	return io_full(fd, (void *)buf, len, -1, 1);
}

int gw_read_full(int fd, void *buf, size_t len)
{
	return io_full(fd, buf, len, -1, 0);
}

int gw_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	return off > INT64_MAX ? -EOVERFLOW : io_full(fd, (void *)buf, len, (int64_t)off, 1);
}

int gw_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return off > INT64_MAX ? -EOVERFLOW : io_full(fd, buf, len, (int64_t)off, 0);
}

int gw_write_file_with(const char *path, mode_t mode,
		       int (*fill)(int fd, void *arg, struct gw_err *err), void *arg,
		       struct gw_err *err)
{
	cleanup_free char *tmp = gw_strdup_printf("%s.tmp.%d", path, (int)getpid());
	if (!tmp)
		return gw_err_set(err, ENOMEM, "out of memory");
	/* ours by its name (our pid): a stale one from a dead process of that pid goes; never
	 * through a link someone put there */
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return gw_err_sys(err, errno, "create %s", tmp);
	int r = fill(fd, arg, err);
	if (r == 0 && fsync(fd) < 0)
		r = gw_err_sys(err, errno, "fsync %s", tmp);
	if (close(fd) < 0 && r == 0)
		r = gw_err_sys(err, errno, "close %s", tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = gw_err_sys(err, errno, "rename %s to %s", tmp, path);
	if (r < 0)
		unlink(tmp);
	return r;
}

struct buf_arg {
	const void *data;
	size_t len;
};

static int fill_buf(int fd, void *arg, struct gw_err *err)
{
	struct buf_arg *b = arg;
	int r = gw_write_full(fd, b->data, b->len);
	return r < 0 ? gw_err_sys(err, -r, "write") : 0;
}

int gw_write_file(const char *path, const void *data, size_t len, mode_t mode,
		  struct gw_err *err)
{
	struct buf_arg b = { data, len };
	int r = gw_write_file_with(path, mode, fill_buf, &b, err);
	return r < 0 ? gw_err_prefix(err, "write %s", path) : 0;
}

int gw_mkdir_p(const char *path, mode_t mode, struct gw_err *err)
{
	char buf[4096];
	if (strlen(path) >= sizeof(buf))
		return gw_err_set(err, ENAMETOOLONG, "path too long: %s", path);
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return gw_err_sys(err, errno, "mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return gw_err_sys(err, errno, "mkdir %s", buf);
	return 0;
}

int gw_lock_dir(const char *dir, struct gw_err *err)
{
	cleanup_free char *path = gw_strdup_printf("%s/lock", dir);
	if (!path)
		return gw_err_set(err, ENOMEM, "out of memory");
	int r = gw_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", path);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return gw_err_sys(err, errno, "lock %s", path);
	return steal_fd(fd);
}

int gw_dir_each(int at, const char *name, int (*fn)(int dfd, const char *entry, void *arg),
		void *arg, struct gw_err *err)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return gw_err_sys(err, errno, "open %s", name);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return gw_err_sys(err, errno, "opendir %s", name);
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = fn(fd, de->d_name, arg);
	closedir(d);
	return r;
}

struct rm_ctx {
	dev_t dev;
	struct gw_err *err;
};

static int rm_at(int at, const char *name, void *arg)
{
	struct rm_ctx *c = arg;
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : gw_err_sys(c->err, errno, "stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != c->dev)
			return gw_err_set(c->err, EXDEV, "%s: on another file system", name);
		int r = gw_dir_each(at, name, rm_at, c, c->err);
		if (r < 0)
			return r;
		if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return gw_err_sys(c->err, errno, "rmdir %s", name);
		return 0;
	}
	if (unlinkat(at, name, 0) < 0 && errno != ENOENT)
		return gw_err_sys(c->err, errno, "unlink %s", name);
	return 0;
}

int gw_rm_rf(const char *path, struct gw_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : gw_err_sys(err, errno, "stat %s", path);
	struct rm_ctx c = { st.st_dev, err };
	return rm_at(AT_FDCWD, path, &c);
}

int gw_copy_file(const char *src, const char *dst, struct gw_err *err)
{
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return gw_err_sys(err, errno, "open %s", src);
	struct stat st;
	if (fstat(in, &st) < 0)
		return gw_err_sys(err, errno, "stat %s", src);
	cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
	if (out < 0)
		return gw_err_sys(err, errno, "create %s", dst);
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return gw_err_sys(err, errno, "copy %s to %s", src, dst);
		if (n == 0)
			break;
		left -= n;
	}
	if (fsync(out) < 0)
		return gw_err_sys(err, errno, "fsync %s", dst);
	return 0;
}

int64_t gw_now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void gw_timeout_lower(int *timeout_ms, int64_t deadline_ns)
{
	int64_t left = deadline_ns - gw_now_mono_ns();
	int ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
	if (*timeout_ms < 0 || ms < *timeout_ms)
		*timeout_ms = ms;
}

int64_t gw_now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void gw_fmt_rfc3339(int64_t real_ns, char buf[36])
{
	time_t secs = (time_t)(real_ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, 36, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 36 - n, ".%09lldZ", (long long)(real_ns % 1000000000LL));
}

/* A non-negative number at the start of s (*end: what follows it). */
static int parse_number(const char *s, double *v, char **end)
{
	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	*v = strtod(s, end);
	return errno || *end == s || *v < 0 ? -EINVAL : 0;
}

int gw_parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	char *end;
	double v;
	if (parse_number(s, &v, &end) < 0)
		return -EINVAL;
	uint64_t unit = default_unit;
	if (*end) {
		char u = (char)toupper((unsigned char)*end);
		const char *rest = end + 1;
		switch (u) {
		case 'B': unit = 1; rest = end + 1; break;
		case 'K': unit = 1ULL << 10; break;
		case 'M': unit = 1ULL << 20; break;
		case 'G': unit = 1ULL << 30; break;
		case 'T': unit = 1ULL << 40; break;
		default: return -EINVAL;
		}
		if (u != 'B') {
			if (*rest == 'i')
				rest++;
			if (*rest == 'B' || *rest == 'b')
				rest++;
		}
		if (*rest)
			return -EINVAL;
	}
	double bytes = v * (double)unit;
	if (bytes > 9.0e18)
		return -ERANGE;
	*out = (uint64_t)bytes;
	return 0;
}

int gw_parse_duration(const char *s, int64_t *out_ns)
{
	char *end;
	double v;
	if (parse_number(s, &v, &end) < 0)
		return -EINVAL;
	double mult;
	if (!*end || !strcmp(end, "ms"))
		mult = 1e6;
	else if (!strcmp(end, "us"))
		mult = 1e3;
	else if (!strcmp(end, "ns"))
		mult = 1;
	else if (!strcmp(end, "s"))
		mult = 1e9;
	else if (!strcmp(end, "m"))
		mult = 60e9;
	else
		return -EINVAL;
	double ns = v * mult;
	if (ns > 9.0e18)
		return -ERANGE;
	*out_ns = (int64_t)ns;
	return 0;
}

void gw_escape_ctl(const char *s, char *out, size_t n)
{
	size_t o = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int esc = c < 0x20 || c == 0x7f;
		if (o + (esc ? 4 : 1) >= n)
			break;
		if (esc)
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

char *gw_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int gw_valid_ifname(const char *name)
{
	size_t n = strnlen(name, 16);
	if (n == 0 || n > 15 || !strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int gw_valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64 || !isalnum((unsigned char)name[0]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return 0;
	}
	return 1;
}
