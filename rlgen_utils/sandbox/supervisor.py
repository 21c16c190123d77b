"""The supervisor side of the sandbox (survey §4, code generation): start the confined process, feed its
stdin, read stdout and stderr with a cap, enforce the wall-clock deadline, kill its process group, and wait
until its pid namespace has ended. ``rlgen_utils.sandbox.run_program`` builds the command line; this module
only runs it. ``spawn_with_fresh_keyring`` starts it from a thread that has joined a new, empty session keyring:
Linux keeps credentials, keyrings included, per thread, so the sandbox inherits that keyring and neither it nor
the caller's other threads see each other's keys."""
import ctypes
import json
import os
import selectors
import signal
import subprocess
import threading
import time

KEYCTL_JOIN_SESSION_KEYRING = 1


def wait_for_namespace_end(info_fd: int, limit_s: float = 5.0) -> None:
    """Return once the pid namespace's init has finished exiting: the kernel kills and reaps every other
    process in the namespace before its init becomes a zombie, so then nothing the program started runs."""
    os.set_blocking(info_fd, False)
    try:
        pid = int(json.loads(os.read(info_fd, 65536).decode().split("}")[0] + "}")["child-pid"])
    except (OSError, ValueError, KeyError, IndexError):
        return  # bwrap failed before it started a namespace
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except (OSError, IndexError):
            return  # gone (reaped)
        time.sleep(0.002)


def read_available(fd: int, limit: int = 1 << 20) -> bytes:
    """What a pipe holds now (non-blocking), up to ``limit`` bytes."""
    os.set_blocking(fd, False)
    data = b""
    while len(data) < limit:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def spawn_with_fresh_keyring(keyctl_nr: int):
    """A ``spawn(argv, popen) -> (Popen, keyring serial or -errno, release)`` that starts the process from a
    thread holding a fresh, anonymous session keyring (``keyctl(JOIN_SESSION_KEYRING, NULL)``). The thread lives
    until ``release()``: it is the process's parent, and bubblewrap's --die-with-parent (PR_SET_PDEATHSIG) fires
    when the parent *thread* exits, which killed programs that had already run when the thread ended first."""
    libc = ctypes.CDLL(None, use_errno=True)

    def spawn(argv, popen):
        box, started, released = {}, threading.Event(), threading.Event()

        def target():
            try:
                serial = libc.syscall(keyctl_nr, KEYCTL_JOIN_SESSION_KEYRING, None)
                box["ring"] = serial if serial > 0 else -ctypes.get_errno()
                box["proc"] = subprocess.Popen(argv, **popen)
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc
                return
            finally:
                started.set()
            released.wait()

        thread = threading.Thread(target=target, name="rlgen-sandbox-spawn", daemon=True)
        thread.start()
        started.wait()
        if "error" in box:
            thread.join()
            raise box["error"]

        def release():
            released.set()
            thread.join()
        return box["proc"], box["ring"], release
    return spawn


def _plain_spawn(argv, popen):
    return subprocess.Popen(argv, **popen), 0, lambda: None


def supervise(argv, popen, stdin_bytes, timeout_s, output_limit, close_after_start=(), cpu_exceeded=None,
              spawn=_plain_spawn):
    """Start, feed stdin, read both streams with a cap, enforce the deadline (and, with ``cpu_exceeded``, a
    callable that says when the CPU limit is reached), kill the group. Returns (returncode, stdout bytes,
    stderr bytes, seconds, timed_out, flooded, cpu_hit, keyring): the three flags are the supervisor's own facts;
    keyring is what ``spawn`` reports (the serial of the fresh session keyring, or -errno, or 0: none joined)."""
    start = time.monotonic()
    deadline = start + timeout_s
    try:
        proc, keyring, release = spawn(argv, popen)
    except OSError as exc:
        return (None, b"", f"sandbox could not start: {exc}".encode(), time.monotonic() - start, False, False, False,
                0)
    finally:
        for fd in close_after_start:
            os.close(fd)
    in_fd, out_fd, err_fd = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    timed_out = flooded = cpu_hit = False
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)
        sel.register(stream.fileno(), selectors.EVENT_READ)
    pending = memoryview(stdin_bytes)
    if pending:
        os.set_blocking(in_fd, False)
        sel.register(in_fd, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if cpu_exceeded is not None and cpu_exceeded():
                cpu_hit = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 0.2:
                break  # the program is gone but something it left holds the pipes (fallback only)
            for key, _ in sel.select(min(deadline - now, 0.05 if exited_at else 0.1 if cpu_exceeded else 0.25)):
                fd = key.fd
                if fd == in_fd:
                    try:
                        written = os.write(fd, pending[:65536])
                        pending = pending[written:]
                    except (BrokenPipeError, BlockingIOError, OSError):
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(fd)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf = buffers[fd]
                buf += chunk[: output_limit + 1 - len(buf)]
                if len(buf) > output_limit:
                    del buf[output_limit:]
                    flooded = True
            if flooded:
                break
    finally:
        sel.close()
        if timed_out or flooded or cpu_hit:
            _kill_group(proc.pid)
        try:  # both streams closed: the program is exiting (not killed here, which raced its exit under load)
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # it closed its streams but ran on past the deadline
            timed_out = True
            _kill_group(proc.pid)
            proc.wait()
        _kill_group(proc.pid)  # whatever is left in the group (the fallback's children)
        release()  # the spawning thread may end now: the process it started has been reaped
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    return (proc.returncode, bytes(buffers[out_fd]), bytes(buffers[err_fd]), time.monotonic() - start,
            timed_out, flooded, cpu_hit, keyring)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
