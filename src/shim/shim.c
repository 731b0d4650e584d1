/* The shim: one per container, outliving the CLI. It starts QEMU as its child, holds the QMP
 * and agent links, writes the output log, serves the control API and drives the lifecycle.
 * Started by `run`/`restore`/`incoming` as `godwit __shim`; reports readiness on a pipe. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "godwit/shim_main.h"
#include "godwit/hv_vm.h"
#include "godwit/qmp.h"
#include "godwit/knobs.h"
#include "godwit/util.h"
#include "godwit/volume.h"
#include "shim.h"
#include "migrate.h"
#include "godwit/net.h"

int shim_set_state(struct container *ct, enum ct_state to, const char *detail)
{
	struct gw_err err = { 0 };
	if (ct->st.state != to && ct_check_transition(ct->st.state, to, &err) < 0) {
		fprintf(stderr, "shim %s: %s\n", ct->cfg.name, err.msg);
		return -EINVAL;
	}
	ct->st.state = to;
	if (detail)
		snprintf(ct->st.detail, sizeof(ct->st.detail), "%s", detail);
	if (to == CT_STOPPED || to == CT_MIGRATED)
		ct->st.finished_ns = gw_now_real_ns();
	if (ct_status_save(ct->root, ct->cfg.name, &ct->st, &err) < 0)
		fprintf(stderr, "shim %s: %s\n", ct->cfg.name, err.msg);
	return 0;
}

void shim_emit(struct container *ct, int chan, const char *name, json_object *data)
{
	json_object *ev = ctl_make_event(name, data);
	if (chan)
		json_object_object_add(json_object_object_get(ev, "data"), "chan",
				       json_object_new_int(chan));
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
		struct shim_client *cl = &ct->clients[i];
		if (cl->fd < 0)
			continue;
		if ((chan == 0 && cl->attached) || (chan && cl->exec_chan == chan))
			shim_send(cl, ev);
	}
	json_object_put(ev);
}

static int spawn_qemu(struct container *ct, struct hv_vm_config *hc, struct gw_err *err)
{
	char **argv;
	struct shim_jail sj;
	int r = shim_jail_prepare(ct, hc, &sj, err);
	if (r < 0 || (r = hv_build_argv(hc, &argv, err)) < 0) {
		shim_jail_release(&sj);
		return r;
	}
	cleanup_free char *qlog = gw_strdup_printf("%s/qemu.log", ct->dir);
	/* the child PID 1 of a new PID namespace (the jail's /proc shows only it): glibc's fork
	 * (a raw clone would skip its atfork handlers, and the child could find malloc's lock
	 * held by the thread that checks a restore's STATE meanwhile) after unshare, which
	 * changes only where this thread's next child goes; setns puts that back */
	int pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	sj.j.own_pids = pidns >= 0 && unshare(CLONE_NEWPID) == 0;
	pid_t pid = fork();
	if (pid != 0 && sj.j.own_pids && setns(pidns, CLONE_NEWPID) < 0)
		fprintf(stderr, "shim %s: back to its PID namespace: %s\n", ct->cfg.name,
			strerror(errno));
	if (pid != 0 && pidns >= 0)
		close(pidns);
	if (pid < 0) {
		hv_argv_free(argv);
		shim_jail_release(&sj);
		return gw_err_sys(err, errno, "fork");
	}
	if (pid == 0) {
		/* QEMU never outlives its shim: nobody would own it (set again after the change of
		 * user, which clears it; a shim gone before this line is not seen: the parent of PID
		 * 1 of a namespace reads as 0 whoever it is) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		int lf = open(qlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		dup2(devnull, 0);
		dup2(lf >= 0 ? lf : devnull, 1);
		dup2(lf >= 0 ? lf : devnull, 2);
		struct gw_err jerr = { 0 };
		if (shim_jail_child(&sj, &jerr) < 0) {
			dprintf(2, "godwit: confine QEMU: %s\n", jerr.msg);
			_exit(127);
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGUSR1, SIG_DFL); /* QEMU kicks its vCPUs with it */
		signal(SIGUSR2, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	hv_argv_free(argv);
	shim_jail_release(&sj);
	ct->qemu_pid = pid;
	ct->st.qemu_pid = pid;
	return 0;
}

static void fill_hv_config(struct container *ct, struct hv_vm_config *hc)
{
	memset(hc, 0, sizeof(*hc));
	hc->name = ct->cfg.name;
	hc->machine = ct->cfg.machine[0] ? ct->cfg.machine : NULL;
	hc->kernel = ct->cfg.kernel;
	hc->initrd = ct->cfg.initrd;
	hc->mem_bytes = ct->cfg.mem_bytes;
	hc->cpus = ct->cfg.cpus;
	hc->accel = ct->accel;
	hc->disk_path = ct->disk_path;
	hc->qmp_path = ct->qmp_path;
	hc->agent_path = ct->agent_path;
	hc->console_path = ct->console_path;
	hc->nic_mac = ct->cfg.nic_mac[0] ? ct->cfg.nic_mac : NULL;
	hc->nic_tap = ct->tap[0] ? ct->tap : NULL;
	hc->free_page_hints = ct->cfg.free_page_hints;
	/* for debugging the guest: e.g. GODWIT_GUEST_CMDLINE=godwit.debug=1 */
	hc->cmdline_extra = gw_knobs()->guest_cmdline;
}

/* The volumes' disks, in the order of the config's specs (vols: paths to free). */
static int fill_volumes(struct container *ct, struct hv_vm_config *hc,
			char *vols[GW_MOUNTS_MAX], struct gw_err *err)
{
	struct gw_mount m[GW_MOUNTS_MAX];
	int n, r = gw_mounts_parse(ct->cfg.volumes, m, &n, err);
	for (int i = 0; r == 0 && i < n; i++) {
		if (!(vols[i] = gw_volume_disk(ct->root, m[i].name)))
			return gw_err_set(err, ENOMEM, "out of memory");
		hc->vol_paths[i] = vols[i];
		hc->vol_ro[i] = m[i].ro;
		hc->n_vols = i + 1;
	}
	return r;
}

int shim_vm_start(struct container *ct, int incoming, int paused, struct gw_err *err)
{
	struct hv_vm_config hc;
	char *vols[GW_MOUNTS_MAX] = { 0 };
	int r = ct->tap[0] ? 0 : shim_net_up(ct, err);
	if (r == 0 && ct->cfg.netns && ct->netns_tap_fd < 0)
		r = shim_netns_up(ct, err);
	if (r < 0)
		return r;
	fill_hv_config(ct, &hc);
	hc.incoming = incoming;
	hc.paused = paused;
	unlink(ct->qmp_path);
	unlink(ct->agent_path);
	r = fill_volumes(ct, &hc, vols, err);
	if (r == 0)
		r = spawn_qemu(ct, &hc, err);
	for (int i = 0; i < GW_MOUNTS_MAX; i++)
		free(vols[i]);
	if (r < 0)
		return r;
	/* wait for the monitor socket, but not for a QEMU that already died (checked every 2 ms:
	 * a destination's QEMU start is part of the move's time) */
	for (int i = 0; i < 7500 && access(ct->qmp_path, F_OK) < 0; i++) {
		int ws;
		if (waitpid(ct->qemu_pid, &ws, WNOHANG) == ct->qemu_pid) {
			ct->qemu_pid = 0;
			r = gw_err_set(err, ECHILD, "QEMU exited at once");
			break;
		}
		poll(NULL, 0, 2);
	}
	if (r < 0 || (r = qmp_connect(ct->qmp_path, 15000, &ct->qmp, err)) < 0) {
		cleanup_free char *qlog = gw_strdup_printf("%s/qemu.log", ct->dir);
		cleanup_free char *txt = NULL;
		if (qlog && gw_read_file(qlog, 4096, &txt, NULL, NULL) == 0 && txt[0])
			return gw_err_prefix(err, "QEMU did not start (%s)", strtok(txt, "\n"));
		return gw_err_prefix(err, "QEMU did not start");
	}
	/* a guest that arrives by migration or restore brings its link state: the caller
	 * reconnects with alink_restore() */
	if (!incoming && (r = alink_open(ct, err)) < 0)
		return gw_err_prefix(err, "agent link");
	ct->st.started_ns = gw_now_real_ns();
	return 0;
}

void shim_request_stop(struct container *ct, int grace_ms)
{
	ct->stop_asked = 1;
	if (ct->qemu_pid <= 0)
		return;
	if (ct->hold_start) {
		/* created, not started: nothing in it to give a grace period to */
		kill(ct->qemu_pid, SIGKILL);
		return;
	}
	/* the agent escalates to SIGKILL after grace_ms; QEMU is forced down 5 s after that */
	alink_send_shutdown(ct, grace_ms, NULL);
	int64_t dl = gw_now_mono_ns() + ((int64_t)grace_ms + 5000) * 1000000;
	if (!ct->quit_deadline_ns || dl < ct->quit_deadline_ns)
		ct->quit_deadline_ns = dl;
}

static void force_quit(struct container *ct)
{
	if (ct->qemu_pid <= 0)
		return;
	if (ct->qmp && hv_vm_quit(ct->qmp, 2000, NULL) == 0)
		ct->quit_deadline_ns = gw_now_mono_ns() + 3000000000LL;
	else
		kill(ct->qemu_pid, SIGKILL), ct->quit_deadline_ns = 0;
}

/* run --restart: the VM went down by itself, and its policy says boot it again */
static int restart_wanted(const struct container *ct)
{
	if (ct->stop_asked || ct->hold_start || ct->st.state != CT_RUNNING || ct->job)
		return 0;
	if (ct->cfg.restart == CT_RESTART_ALWAYS)
		return 1;
	return ct->cfg.restart == CT_RESTART_ON_FAILURE && ct->st.exit_status != 0 &&
	       (!ct->cfg.restart_max || ct->st.restarts < ct->cfg.restart_max);
}

/* boot it again: the same disk, network and log, a fresh VM and main process; 0, or -1 and
 * the container stops as it would have */
static int restart_vm(struct container *ct, char *detail, size_t len)
{
	int code = ct->st.exit_status;
	ct->st.restarts++;
	fprintf(stderr, "shim %s: restarting (policy %s, exit status %d, restart %d)\n",
		ct->cfg.name, ct->cfg.restart == CT_RESTART_ALWAYS ? "always" : "on-failure", code,
		ct->st.restarts);
	ct->started = ct->main_exited = ct->agent_hello = 0;
	ct->quit_deadline_ns = 0;
	ct->st.exit_status = -1;
	struct gw_err err = { 0 };
	if (shim_vm_start(ct, 0, 0, &err) == 0) {
		char d[64];
		snprintf(d, sizeof(d), "restarted %d times", ct->st.restarts);
		shim_set_state(ct, CT_RUNNING, d);
		return 0;
	}
	fprintf(stderr, "shim %s: restart failed: %s\n", ct->cfg.name, err.msg);
	shim_kill_qemu(ct);
	ct->st.exit_status = code;
	snprintf(detail, len, "restart failed: %.100s", err.msg);
	return -1;
}

static void on_qemu_exit(struct container *ct, int wstatus)
{
	ct->qemu_pid = 0;
	ct->st.qemu_pid = 0;
	if (ct->qmp) {
		qmp_close(ct->qmp);
		ct->qmp = NULL;
	}
	alink_close(ct);
	char detail[128] = "";
	if (!ct->main_exited && ct->st.state != CT_MIGRATED) {
		/* the VM went down without the container's exit status: a crash or a kill */
		if (ct->st.exit_status < 0)
			ct->st.exit_status = 137;
		snprintf(detail, sizeof(detail), "VM exited (%s %d) before the container did",
			 WIFSIGNALED(wstatus) ? "signal" : "status",
			 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
		json_object *d = json_object_new_object();
		json_object_object_add(d, "status", json_object_new_int(ct->st.exit_status));
		shim_emit(ct, 0, "exit", d);
	}
	if (restart_wanted(ct) && restart_vm(ct, detail, sizeof(detail)) == 0)
		return;
	if (ct->st.state != CT_MIGRATED)
		shim_set_state(ct, CT_STOPPED, detail[0] ? detail : NULL);
	ct->done = 1;
}

static void reap(struct container *ct)
{
	int ws;
	pid_t p;
	while ((p = waitpid(-1, &ws, WNOHANG)) > 0)
		if (p == ct->qemu_pid)
			on_qemu_exit(ct, ws);
}

static void client_close(struct container *ct, struct shim_client *cl)
{
	if (ct->asks.recover_client == cl)
		ct->asks.recover_client = NULL; /* nobody left to answer */
	if (cl->fd >= 0)
		close(cl->fd);
	ctl_reader_free(&cl->rd);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

static void accept_client(struct container *ct)
{
	int fd = accept4(ct->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++) {
		if (ct->clients[i].fd < 0) {
			ct->clients[i].fd = fd;
			return;
		}
	}
	json_object *e = ctl_make_error("GenericError", "too many clients");
	ctl_send_within(fd, e, SHIM_CLIENT_SEND_MS, NULL);
	json_object_put(e);
	close(fd);
}

static void client_readable(struct container *ct, struct shim_client *cl)
{
	struct gw_err err = { 0 };
	int n = ctl_reader_fill(&cl->rd, cl->fd, &err);
	if (n == -EAGAIN)
		return;
	for (;;) {
		json_object *req;
		int r = ctl_reader_next(&cl->rd, &req, &err);
		if (r < 0) {
			json_object *e = ctl_make_error("GenericError", err.msg);
			ctl_send_within(cl->fd, e, SHIM_CLIENT_SEND_MS, NULL);
			json_object_put(e);
			client_close(ct, cl);
			return;
		}
		if (r == 0)
			break;
		ctl_handle(ct, cl, req);
		json_object_put(req);
		/* a client whose request became the job waits for its answer, unread */
		if (cl->fd < 0 || cl == ct->job_client)
			return;
	}
	if (n <= 0)
		client_close(ct, cl);
}

/* the control socket: its listener, then each client slot (-1: free, or the job's client) */
#define SHIM_CTL_POLLFDS (1 + SHIM_MAX_CLIENTS)
static void shim_ctl_pollfds(struct container *ct, struct pollfd *pfd)
{
	pfd[0] = (struct pollfd){ .fd = ct->listen_fd, .events = POLLIN };
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		pfd[1 + i] = (struct pollfd){ .fd = &ct->clients[i] == ct->job_client ? -1
						    : ct->clients[i].fd, .events = POLLIN };
}

static void shim_ctl_serve(struct container *ct, const struct pollfd *pfd)
{
	if (pfd[0].revents & POLLIN)
		accept_client(ct);
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		if (pfd[1 + i].fd >= 0 && pfd[1 + i].revents)
			client_readable(ct, &ct->clients[i]);
}

/* The one loop of the shim. A job (a migration or snapshot: job.h) owns QEMU's monitor and
 * the signals while it runs (it reaps and stops QEMU itself); the loop resumes it when what it
 * waits for comes, after serving the agent link and the control socket. */
static int event_loop(struct container *ct)
{
	while (!ct->done) {
		struct pollfd pfd[5 + JOB_POLLFDS + SHIM_CTL_POLLFDS];
		int n = 0, idx_sig = -1, idx_agent = -1, idx_qmp = -1, idx_con = -1, idx_job;
		shim_own_log_check(ct);
		if (ct->console_fd >= 0) {
			idx_con = n;
			pfd[n++] = (struct pollfd){ .fd = ct->console_fd, .events = POLLIN };
		}
		if (!ct->job) {
			idx_sig = n;
			pfd[n++] = (struct pollfd){ .fd = ct->signal_fd, .events = POLLIN };
		}
		if (alink_fd(ct) >= 0) {
			idx_agent = n;
			pfd[n++] = (struct pollfd){ .fd = alink_fd(ct),
						    .events = POLLIN | (alink_wants_write(ct) ? POLLOUT : 0) };
		}
		int idx_in = -1, in_fd = shim_stdio_in_fd(ct);
		if (in_fd >= 0) {
			idx_in = n;
			pfd[n++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
		}
		shim_stdio_size_check(ct);
		if (ct->qmp && !ct->job) {
			idx_qmp = n;
			pfd[n++] = (struct pollfd){ .fd = qmp_fd(ct->qmp), .events = POLLIN };
		}
		int first_ctl = n;
		shim_ctl_pollfds(ct, pfd + n);
		n += SHIM_CTL_POLLFDS;
		int timeout = 1000;
		if (ct->quit_deadline_ns)
			gw_timeout_lower(&timeout, ct->quit_deadline_ns);
		alink_timeout(ct, &timeout);
		idx_job = n;
		n += job_pollfds(ct->job, pfd + n, &timeout);
		int pr = poll(pfd, (nfds_t)n, timeout);
		if (pr < 0 && errno != EINTR)
			return -errno;
		if (ct->quit_deadline_ns && gw_now_mono_ns() >= ct->quit_deadline_ns) {
			ct->quit_deadline_ns = 0;
			force_quit(ct);
		}
		ctl_exec_timeouts(ct);
		ctl_query_timeouts(ct);
		alink_tick(ct);
		shim_vcpu_sample(ct);
		if (pr < 0)
			continue;
		if (idx_sig >= 0 && pfd[idx_sig].revents) {
			struct signalfd_siginfo si;
			while (read(ct->signal_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					reap(ct);
				else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					shim_request_stop(ct, 10000);
			}
		}
		if (idx_con >= 0 && pfd[idx_con].revents)
			shim_console_on_readable(ct);
		if (idx_in >= 0 && pfd[idx_in].revents && ct->stdio_fd[0] >= 0)
			shim_stdio_on_input(ct);
		if (idx_agent >= 0 && pfd[idx_agent].revents) {
			if (pfd[idx_agent].revents & POLLOUT)
				alink_on_writable(ct);
			if (pfd[idx_agent].revents & (POLLIN | POLLHUP | POLLERR))
				if (alink_on_readable(ct) == -EPIPE)
					alink_close(ct);
		}
		if (idx_qmp >= 0 && pfd[idx_qmp].revents && ct->qmp) {
			if (qmp_pump(ct->qmp, NULL) == -EPIPE) {
				qmp_close(ct->qmp);
				ct->qmp = NULL;
			} else {
				json_object *ev;
				while ((ev = qmp_next_event(ct->qmp)))
					json_object_put(ev);
			}
		}
		shim_ctl_serve(ct, pfd + first_ctl);
		/* last: a request just served (migrate-cancel) is seen when the job goes on */
		if (idx_job < n)
			job_dispatch(&ct->job, pfd + idx_job);
	}
	return 0;
}

static void ready_report(int fd, const char *msg)
{
	if (fd < 0)
		return;
	gw_write_full(fd, msg, strlen(msg));
	close(fd);
}

static int setup_paths(struct container *ct, struct gw_err *err)
{
	const char *n = ct->cfg.name;
	ct->dir = ct_dir(ct->root, n);
	ct->sock_path = ct_path(ct->root, n, "shim.sock");
	ct->qmp_path = ct_path(ct->root, n, "qmp.sock");
	ct->agent_path = ct_path(ct->root, n, "agent.sock");
	ct->console_path = ct_path(ct->root, n, "console.log");
	ct->log_path = ct_path(ct->root, n, "output.log");
	ct->disk_path = ct_path(ct->root, n, "disk.qcow2");
	if (!ct->dir || !ct->sock_path || !ct->qmp_path || !ct->agent_path || !ct->console_path ||
	    !ct->log_path || !ct->disk_path)
		return gw_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static void free_container(struct container *ct)
{
	shim_net_down(ct);
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		client_close(ct, &ct->clients[i]);
	if (ct->qmp)
		qmp_close(ct->qmp);
	alink_close(ct);
	if (ct->listen_fd >= 0)
		close(ct->listen_fd);
	if (ct->signal_fd >= 0)
		close(ct->signal_fd);
	if (ct->log_fd >= 0)
		close(ct->log_fd);
	shim_console_close(ct);
	shim_stdio_close(ct);
	free(ct->stdin_early.buf);
	if (ct->netns_tap_fd >= 0)
		close(ct->netns_tap_fd);
	unlink(ct->sock_path);
	free(ct->dir); free(ct->sock_path); free(ct->qmp_path); free(ct->agent_path);
	free(ct->console_path); free(ct->log_path); free(ct->disk_path);
	free(ct->tls_dir);
	ct_config_free(&ct->cfg);
}

/* The container's record, paths, signals, log and control socket; an incoming one has only
 * what this host decides until its config arrives with the migration. */
static int shim_setup(struct container *ct, const struct shim_opts *o, const char *name,
		      int incoming, struct gw_err *err)
{
	int r = 0;
	if (incoming) {
		snprintf(ct->cfg.name, sizeof(ct->cfg.name), "%s", name);
		snprintf(ct->cfg.accel, sizeof(ct->cfg.accel), "%s", o->accel);
		ct->cfg.kernel = o->kernel ? strdup(o->kernel) : NULL;
		ct->cfg.initrd = o->initrd ? strdup(o->initrd) : NULL;
		ct->st.state = CT_INCOMING;
	} else {
		r = ct_config_load(o->root, name, &ct->cfg, err);
	}
	if (r == 0)
		r = setup_paths(ct, err);
	if (r == 0)
		ct->accel = strcmp(ct->cfg.accel, "kvm") ? HV_ACCEL_TCG : HV_ACCEL_KVM;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* requests to a running move come over the control API now: a stray SIGUSR1/2 (an
	 * older godwit's cancel) must not end the container */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (r == 0 && (ct->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		r = gw_err_sys(err, errno, "signalfd");
	if (r == 0 && (ct->log_fd = open(ct->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
					 0600)) < 0)
		r = gw_err_sys(err, errno, "open %s", ct->log_path);
	if (r == 0 && (ct->listen_fd = ctl_listen(ct->sock_path, err)) < 0)
		r = ct->listen_fd;
	return r;
}

void shim_kill_qemu(struct container *ct)
{
	if (ct->qemu_pid <= 0)
		return;
	kill(ct->qemu_pid, SIGKILL);
	while (waitpid(ct->qemu_pid, NULL, 0) < 0 && errno == EINTR)
		;
	ct->qemu_pid = 0;
}

/* After the loop: the exit status, and what goes with the shim (a failed incoming move's
 * record, a --rm container's). */
static int shim_finish(struct container *ct)
{
	shim_kill_qemu(ct);
	if (ct->incoming_failed) {
		/* nothing of a failed incoming migration stays on this host */
		char *dir = strdup(ct->dir);
		free_container(ct);
		if (dir && !gw_knobs()->debug_keep)
			gw_rm_rf(dir, NULL);
		free(dir);
		return GW_EXIT_ERROR;
	}
	int status = ct->st.exit_status;
	int autorm = ct->cfg.auto_remove;
	/* --rm: the record goes before the clients' connections close, so a foreground `run`
	 * that waits for the close finds nothing left behind */
	if (autorm && ct->cfg.network[0])
		gw_network_release(ct->root, ct->cfg.network, ct->cfg.name, NULL);
	if (autorm)
		gw_rm_rf(ct->dir, NULL);
	free_container(ct);
	return status < 0 ? 0 : status;
}

int shim_main(const struct shim_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "incoming", required_argument, NULL, 'i' },
		{ "restore", required_argument, NULL, 'R' },
		{ "link", required_argument, NULL, 'L' },
		{ "tls-dir", required_argument, NULL, 'T' },
		{ "memory-max", required_argument, NULL, 'M' },
		{ "cpus-max", required_argument, NULL, 'C' },
		{ "hold-start", no_argument, NULL, 'H' },
		{ "stdio-fd", required_argument, NULL, 'S' },
		{ 0 },
	};
	/* by default an incoming container may be as large as this host */
	uint64_t max_mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	long max_cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int ready_fd = -1, c, listen_fd = -1, hold = 0, stdio_fd = -1;
	const char *incoming = NULL, *restore = NULL, *link = NULL, *tls_dir = NULL;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			ready_fd = atoi(optarg);
		else if (c == 'i')
			incoming = optarg;
		else if (c == 'R')
			restore = optarg;
		else if (c == 'L')
			link = optarg;
		else if (c == 'T')
			tls_dir = optarg;
		else if (c == 'M')
			max_mem = strtoull(optarg, NULL, 10);
		else if (c == 'C')
			max_cpus = strtol(optarg, NULL, 10);
		else if (c == 'H')
			hold = 1;
		else if (c == 'S')
			stdio_fd = atoi(optarg);
		else
			return GW_EXIT_ERROR;
	}
	if (optind != argc - 1 || !restore != !link || (restore && incoming) ||
	    (tls_dir && !incoming) || ((hold || stdio_fd >= 0) && (incoming || restore)) ||
	    stdio_fd == 0 || stdio_fd > 64)
		return GW_EXIT_ERROR;
	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);

	struct container ct = { .root = o->root, .listen_fd = -1, .signal_fd = -1, .log_fd = -1,
				.netns_tap_fd = -1,
				.console_fd = -1, .console_log_fd = -1 };
	for (int i = 0; i < SHIM_MAX_CLIENTS; i++)
		ct.clients[i].fd = -1;
	ct.st.exit_status = -1;
	ct.st.shim_pid = getpid();
	/* `godwit-runtime create`: the container's stdio, and START only at "start" */
	shim_stdio_take(&ct, stdio_fd);
	ct.hold_start = hold;
	/* an incoming move inside TLS: its certificates (docs/security.md) */
	ct.tls_dir = tls_dir ? strdup(tls_dir) : NULL;
	ct.max_mem = max_mem;
	ct.max_cpus = max_cpus > 0 && max_cpus < 4096 ? (int)max_cpus : 1;
	struct gw_err err = { 0 };
	int r = shim_setup(&ct, o, argv[optind], incoming != NULL, &err);
	if (r == 0 && incoming && (listen_fd = net_listen_tcp(incoming, &err)) < 0)
		r = listen_fd;
	/* restore: the VM continues from a snapshot's state (`godwit restore`) */
	if (r == 0 && restore)
		r = mig_restore_vm(&ct, restore, link, &err);
	else if (r == 0 && !incoming)
		r = shim_vm_start(&ct, 0, 0, &err);
	if (r < 0) {
		fprintf(stderr, "shim: %s\n", err.msg);
		shim_kill_qemu(&ct);
		free_container(&ct);
		/* last: the CLI removes the half-made record once it reads this */
		char msg[GW_ERR_MSG_MAX + 8];
		snprintf(msg, sizeof(msg), "error: %s", err.msg);
		ready_report(ready_fd, msg);
		return GW_EXIT_ERROR;
	}
	if (incoming) {
		ct_status_save(ct.root, ct.cfg.name, &ct.st, NULL);
		ready_report(ready_fd, "ok");
		/* the move is a job of the loop (its end closes listen_fd) */
		if (mig_dest_start(&ct, listen_fd, &err) < 0) {
			fprintf(stderr, "shim: incoming migration failed: %s\n", err.msg);
			close(listen_fd);
			ct.incoming_failed = 1;
			ct.done = 1;
		}
	} else if (hold) {
		/* created: the VM boots, its process waits for "start" (control.c) */
		ct_status_save(ct.root, ct.cfg.name, &ct.st, NULL);
		ready_report(ready_fd, "ok");
	} else {
		shim_set_state(&ct, CT_RUNNING, "");
		ready_report(ready_fd, "ok");
	}
	event_loop(&ct);
	return shim_finish(&ct);
}
