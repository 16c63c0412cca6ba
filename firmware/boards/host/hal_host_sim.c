/* Host board HAL: a simulated board that runs as a normal process on this machine.
 *
 * The console is a real pseudo-terminal. ta_hal_init opens one, puts it in raw mode and prints the
 * slave's path as one line on stdout (the way QEMU prints "char device redirected to ..."), so the
 * host side opens it with pyserial exactly like a USB serial port. The LED, pins, temperature and
 * ADC are simulated (../sim/hal_sim_devices.c); time comes from the monotonic clock, and the timer
 * slots (../common/hal_timers.c) run on it.
 */
#define _XOPEN_SOURCE 600 /* posix_openpt, grantpt, unlockpt, ptsname */
#define _DEFAULT_SOURCE   /* cfmakeraw */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ta_hal.h"

#define HOST_POLL_MS 20             /* how often to look for the other side before it connects */
#define HOST_EXIT_DRAIN_MS 2000     /* at exit, wait this long at most for the other side to read */
#define HOST_DRAIN_STEP_MS 5

static int master_fd = -1;
static int peer_seen;               /* the other side has sent at least one byte */
static pid_t parent_pid;
static struct timespec t0;

static void die(const char *what)
{
    perror(what);
    exit(70); /* EX_SOFTWARE: the board itself could not start */
}

static void console_open(void)
{
    master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_fd < 0 || grantpt(master_fd) != 0 || unlockpt(master_fd) != 0) {
        die("hal_host_sim: posix_openpt");
    }
    const char *slave = ptsname(master_fd);
    if (slave == NULL) {
        die("hal_host_sim: ptsname");
    }
    /* Raw mode is a property of the terminal, not of one open file, so set it once through a
     * short-lived slave fd; whatever the program writes before pyserial configures the port then
     * arrives unchanged (no echo, no \n -> \r\n). The fd is closed again so that the program sees a
     * hang-up when the other side closes. */
    int slave_fd = open(slave, O_RDWR | O_NOCTTY);
    struct termios tio;
    if (slave_fd < 0 || tcgetattr(slave_fd, &tio) != 0) {
        die("hal_host_sim: open slave");
    }
    cfmakeraw(&tio);
    if (tcsetattr(slave_fd, TCSANOW, &tio) != 0) {
        die("hal_host_sim: tcsetattr");
    }
    close(slave_fd);
    printf("%s\n", slave);
    fflush(stdout);
}

void ta_hal_init(void)
{
    clock_gettime(CLOCK_MONOTONIC, &t0);
    parent_pid = getppid();
    console_open();
}

void ta_hal_exit(int code)
{
    /* Linux throws away what the other side has not read yet when the master closes, so before
     * exiting wait (a bounded time) until the slave's input queue stays empty. The check goes
     * through a fresh slave fd because FIONREAD counts the slave's unread input. */
    if (master_fd >= 0 && peer_seen) {
        int fd = open(ptsname(master_fd), O_RDWR | O_NOCTTY | O_NONBLOCK);
        int empty_checks = 0;
        for (int waited = 0; fd >= 0 && waited < HOST_EXIT_DRAIN_MS; waited += HOST_DRAIN_STEP_MS) {
            int unread = 0;
            if (ioctl(fd, FIONREAD, &unread) != 0) {
                break;
            }
            /* twice in a row, because bytes reach the slave's queue a moment after write() */
            empty_checks = unread == 0 ? empty_checks + 1 : 0;
            if (empty_checks == 2) {
                break;
            }
            struct timespec pause = {0, HOST_DRAIN_STEP_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    exit(code);
}

int ta_hal_getc(void)
{
    for (;;) {
        ta_hal_poll(); /* due timers run while the console waits (at most HOST_POLL_MS late) */
        struct pollfd p = {.fd = master_fd, .events = POLLIN};
        int r = poll(&p, 1, HOST_POLL_MS);
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (r > 0 && (p.revents & POLLIN)) {
            unsigned char c;
            ssize_t n = read(master_fd, &c, 1);
            if (n == 1) {
                peer_seen = 1;
                return c;
            }
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            /* EIO: no slave open. Before the first byte that only means "not connected yet". */
            if (peer_seen) {
                return -1;
            }
        } else if (r > 0 && (p.revents & (POLLHUP | POLLERR)) && peer_seen) {
            return -1;
        }
        if (getppid() != parent_pid) {
            return -1; /* orphaned: whoever started us is gone and nobody will connect */
        }
        if (r > 0 && !(p.revents & POLLIN)) {
            /* Linux reports POLLHUP at once while no slave is open; do not spin on it. */
            struct timespec pause = {0, HOST_POLL_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
}

void ta_hal_write(const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(master_fd, buf, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return; /* the other side is gone; the next ta_hal_getc reports it */
        }
        buf += w;
        n -= (size_t)w;
    }
}

uint32_t ta_hal_millis(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ms = (int64_t)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    return (uint32_t)ms;
}

/* Nanoseconds of this thread's CPU time (wraps after 4.29 s of it): a process has no cycle counter
 * it can read portably, and CPU time at least leaves out the time other processes had the core. */
uint32_t ta_hal_cycles(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint32_t)((uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec);
}
