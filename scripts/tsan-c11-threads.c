// LD_PRELOAD shim for ThreadSanitizer runs (scripts/sanitize.sh thread).
//
// 1. C11 threads (thrd_*, mtx_*, cnd_*) over their pthread counterparts. Debian's librdkafka starts its threads with glibc's thrd_create, which calls
// glibc's internal pthread_create directly; the toolchain's TSan runtime has no thrd_create
// interceptor, so it never learns about those threads and crashes (SEGV in its allocator) on
// their first malloc. Routed through the (intercepted) pthread_create, they are ordinary threads
// to TSan; joins and detaches must go the same way, or TSan keeps the ended threads registered
// and trips over a reused pthread_t. The mutexes and condition variables likewise, so TSan sees
// the order librdkafka's locks put between its threads and ours (glibc's mtx_lock and cnd_wait
// skip the interceptors too). glibc's mtx_t and cnd_t are its pthread types.
//
// 2. Swift's Synchronization.Mutex on Linux locks with an atomic compare-and-swap inlined into
// our (instrumented) code, but when contended it goes to libswiftSynchronization.so's
// _lockSlow/_unlockSlow (more compare-and-swaps, then futex PI syscalls), which TSan does not
// see, so two accesses under the same Mutex look like a race. Both are wrapped here to tell
// TSan (__tsan_acquire after _lockSlow, __tsan_release before _unlockSlow) on the lock word,
// the address the inlined fast path's atomics use too.
//
// Never used outside sanitizer runs.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct start {
    thrd_start_t func;
    void *arg;
};

static void *trampoline(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thread, thrd_start_t func, void *arg) {
    struct start *s = malloc(sizeof *s);
    if (!s) return thrd_nomem;
    s->func = func;
    s->arg = arg;
    int rc = pthread_create((pthread_t *)thread, NULL, trampoline, s);
    if (rc != 0) {
        free(s);
        return rc == EAGAIN || rc == ENOMEM ? thrd_nomem : thrd_error;
    }
    return thrd_success;
}

int thrd_join(thrd_t thread, int *result) {
    void *value = NULL;
    if (pthread_join((pthread_t)thread, &value) != 0) return thrd_error;
    if (result) *result = (int)(intptr_t)value;
    return thrd_success;
}

int thrd_detach(thrd_t thread) {
    return pthread_detach((pthread_t)thread) == 0 ? thrd_success : thrd_error;
}

int mtx_init(mtx_t *mutex, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc == 0 ? thrd_success : thrd_error;
}

int mtx_lock(mtx_t *mutex) { return pthread_mutex_lock((pthread_mutex_t *)mutex) == 0 ? thrd_success : thrd_error; }

int mtx_trylock(mtx_t *mutex) {
    int rc = pthread_mutex_trylock((pthread_mutex_t *)mutex);
    return rc == 0 ? thrd_success : rc == EBUSY ? thrd_busy : thrd_error;
}

int mtx_timedlock(mtx_t *restrict mutex, const struct timespec *restrict deadline) {
    int rc = pthread_mutex_timedlock((pthread_mutex_t *)mutex, deadline);
    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int mtx_unlock(mtx_t *mutex) { return pthread_mutex_unlock((pthread_mutex_t *)mutex) == 0 ? thrd_success : thrd_error; }

void mtx_destroy(mtx_t *mutex) { pthread_mutex_destroy((pthread_mutex_t *)mutex); }

int cnd_init(cnd_t *cond) { return pthread_cond_init((pthread_cond_t *)cond, NULL) == 0 ? thrd_success : thrd_error; }

int cnd_signal(cnd_t *cond) { return pthread_cond_signal((pthread_cond_t *)cond) == 0 ? thrd_success : thrd_error; }

int cnd_broadcast(cnd_t *cond) { return pthread_cond_broadcast((pthread_cond_t *)cond) == 0 ? thrd_success : thrd_error; }

int cnd_wait(cnd_t *cond, mtx_t *mutex) {
    return pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex) == 0 ? thrd_success : thrd_error;
}

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mutex, const struct timespec *restrict deadline) {
    int rc = pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex, deadline);
    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

void cnd_destroy(cnd_t *cond) { pthread_cond_destroy((pthread_cond_t *)cond); }

// The TSan runtime's annotations (exported by the sanitized executable; absent in other
// processes that inherit LD_PRELOAD, e.g. python3).
extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

// Swift's _MutexHandle._lockSlow(_ tid: UInt32) and _unlockSlow(): swiftcc, the handle (its
// lock word) in r13, the thread id in edi. Wrapped in assembly so every register the callee
// reads is passed through untouched.
#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"
__attribute__((visibility("hidden"))) void *tsan_shim_real_lock_slow, *tsan_shim_real_unlock_slow;

__attribute__((constructor)) static void tsan_shim_init(void) {
    tsan_shim_real_lock_slow = dlsym(RTLD_NEXT, LOCK_SLOW);
    tsan_shim_real_unlock_slow = dlsym(RTLD_NEXT, UNLOCK_SLOW);
}

__attribute__((visibility("hidden"))) void tsan_shim_acquired(void *word) { if (__tsan_acquire) __tsan_acquire(word); }
__attribute__((visibility("hidden"))) void tsan_shim_releasing(void *word) { if (__tsan_release) __tsan_release(word); }

// The lock word is saved across the real call (which also keeps the stack 16-byte aligned),
// then handed to tsan_shim_acquired as its argument in a tail call.
__asm__(
    ".text\n"
    ".globl \"" LOCK_SLOW "\"\n"
    ".type \"" LOCK_SLOW "\", @function\n"
    "\"" LOCK_SLOW "\":\n"
    "  push %r13\n"
    "  call *tsan_shim_real_lock_slow(%rip)\n"
    "  pop %rdi\n"
    "  jmp tsan_shim_acquired\n"
    ".globl \"" UNLOCK_SLOW "\"\n"
    ".type \"" UNLOCK_SLOW "\", @function\n"
    "\"" UNLOCK_SLOW "\":\n"
    "  push %r13\n"
    "  mov %r13, %rdi\n"
    "  call tsan_shim_releasing\n"
    "  pop %r13\n"
    "  jmp *tsan_shim_real_unlock_slow(%rip)\n");
