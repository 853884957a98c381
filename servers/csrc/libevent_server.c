/*
 * The seed's server design on libevent 2.1: one event_base, an
 * evconnlistener on the socket Rust already bound, one bufferevent per
 * connection. Built by servers/build.rs only with the cargo feature
 * `libevent`; driven by servers/src/models/libevent.rs, which reads it.
 *
 * C owns the event loop and every libevent object. It knows nothing about
 * the protocol: in framed mode it hands the input bytes to Rust
 * (`cb->process`), writes what Rust returns, arms one evtimer per DELAY, and
 * closes when Rust says so. In raw mode it moves input to output itself.
 *
 * Flow control: once a connection's output evbuffer holds IOM_OUTPUT_LIMIT
 * bytes, or Rust reports it is blocked (too many DELAYs pending), reading
 * stops (bufferevent_disable(EV_READ)); the write callback (output drained
 * below IOM_RESUME_BELOW) or a fired DELAY resumes it. Input that is left
 * over waits in the input evbuffer, so memory per connection stays bounded.
 *
 * Every IOM_ limit comes from iom_limits.h, which servers/build.rs writes
 * from the libevent row of servers/src/limits.rs, the table every model
 * shares: change a limit there, not here.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "iom_limits.h"

/* A duration in milliseconds as a struct timeval. */
static struct timeval ms_timeval(long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Mirrors `Step` in libevent.rs: what Rust made of a run of input. */
struct iom_delay {
    uint64_t micros;
    void *frame; /* a Box<Frame> owned by Rust: handed back to fire or drop */
};
struct iom_step {
    size_t consumed;                /* input bytes used */
    size_t want;                    /* input bytes needed before the next call can progress */
    const uint8_t *out;             /* responses to write now (valid until the next call) */
    size_t out_len;
    const struct iom_delay *delays; /* DELAYs to arm */
    size_t n_delays;
    int blocked;                    /* stopped early for room: resume when output drains or a delay fires */
    int close;                      /* TOO_LARGE: close once the output is flushed */
};

enum iom_count { IOM_READ = 0, IOM_WROTE = 1, IOM_ANSWERED = 2, IOM_PARTIAL_FRAME_TIMEOUT = 3, IOM_WRITE_TIMEOUT = 4,
                 IOM_ERROR = 5 };

/* Mirrors `Callbacks` in libevent.rs. */
struct iom_callbacks {
    void *ctx;
    void *(*conn_open)(void *ctx);               /* counts accepted; Rust's per-connection state (framed) */
    void (*conn_close)(void *ctx, void *rconn);  /* counts closed; frees Rust's state */
    void (*process)(void *rconn, const uint8_t *in, size_t len, size_t out_room, struct iom_step *step);
    void (*delay_fire)(void *rconn, void *frame, const uint8_t **out, size_t *out_len);
    void (*delay_drop)(void *rconn, void *frame);
    void (*count)(int what, uint64_t n);
    int (*accept_error)(void *ctx, int err);     /* logs; nonzero: back off before accepting again */
    int (*admit)(void *ctx);                     /* zero: --max-connections are open, close this one */
};

struct server;

struct delay {
    struct conn *c;
    struct event *ev;
    void *frame;
    struct delay *prev, *next;
};

/* A connection's state is three fields, not one enum as mio-single's
 * `Phase` (Open, Paused, ReadClosed, Closing, Lingering), because here they
 * are independent:
 * - `closing` is the lifecycle: 0 open; 1 TOO_LARGE queued (or a DELAY
 *   could not be armed): once the output and the DELAYs are done, send
 *   our FIN (mio's Closing); 2 our FIN is out, input is discarded until
 *   the peer's FIN or `linger` fires (mio's Lingering).
 * - `eof`, the peer's FIN, arrives in any of those: with closing 0 it
 *   starts the half-close (mio's ReadClosed); with 1, maybe_finish
 *   closes once the output and the DELAYs are done, without lingering;
 *   with 2, event_cb closes at once.
 * - `paused`, reading stopped by flow control, is also set after the FIN:
 *   event_cb runs process_input, which pauses whenever the output is at
 *   IOM_OUTPUT_LIMIT, and maybe_finish then waits for write_cb to clear
 *   it. mio-single never reads while over a limit and stops reading at
 *   the FIN, so it needs no paused-after-FIN state. Once closing is set,
 *   `paused` decides nothing more (maybe_finish re-enables reading itself
 *   to linger).
 * `linger` is closing 2's timer, not a state of its own. */
struct conn {
    struct server *srv;
    struct bufferevent *bev;
    void *rconn;
    size_t want;
    int paused, eof, closing;
    int partial; /* a frame has started: the read timeout is armed */
    struct event *linger; /* after TOO_LARGE: caps the time spent discarding input */
    struct delay *delays;
    size_t n_delays;
    struct conn *prev, *next;
};

struct server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *wake, *backoff;
    const struct iom_callbacks *cb;
    int framed;
    /* --partial-frame-timeout-ms and --write-timeout-ms, as bufferevent
     * timeouts: libevent's read timeout fires when no byte arrives for its
     * time while reading is enabled, its write timeout when output waits
     * and no byte leaves for its time. */
    struct timeval partial_tv, write_tv;
    struct conn *conns;
};

static void conn_free(struct conn *c) {
    struct server *s = c->srv;
    while (c->delays) {
        struct delay *d = c->delays;
        c->delays = d->next;
        event_free(d->ev);
        s->cb->delay_drop(c->rconn, d->frame);
        free(d);
    }
    if (c->linger)
        event_free(c->linger);
    bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: closes the socket */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->cb->conn_close(s->cb->ctx, c->rconn);
    free(c);
}

static void pause_reading(struct conn *c) {
    if (!c->paused) {
        c->paused = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}

static void resume_reading(struct conn *c) {
    if (c->paused) {
        c->paused = 0;
        if (!c->eof)
            bufferevent_enable(c->bev, EV_READ);
    }
}

/* The read timeout is armed only while a frame has started, so that a
 * connection idle between frames may stay idle; changed only when that
 * changes (bufferevent_set_timeouts re-adds the events). */
static void watch_partial(struct conn *c, int partial) {
    if (c->partial == partial)
        return;
    c->partial = partial;
    bufferevent_set_timeouts(c->bev, partial ? &c->srv->partial_tv : NULL, &c->srv->write_tv);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    conn_free(arg);
}

/* Close when done: after TOO_LARGE once the output is flushed; after the
 * peer's EOF once every buffered request is answered (half-close). Returns 1
 * if the connection is gone. */
static int maybe_finish(struct conn *c) {
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
        return 0;
    if (c->closing == 1) {
        /* DELAYs read before the TOO_LARGE frame are still owed an answer
         * (PROTOCOL.md: answered exactly once): wait for them first. */
        if (c->n_delays != 0)
            return 0;
        /* Send FIN after the TOO_LARGE response, then discard input for a
         * while: closing with unread input would send RST, which may
         * destroy the response before the client reads it. */
        c->closing = 2;
        watch_partial(c, 0); /* lingering has its own limit */
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
        c->linger = evtimer_new(c->srv->base, linger_cb, c);
        struct timeval tv = ms_timeval(IOM_LINGER_MS);
        if (!c->linger || evtimer_add(c->linger, &tv) != 0 || c->eof) {
            conn_free(c);
            return 1;
        }
        bufferevent_enable(c->bev, EV_READ);
        return 0;
    }
    if (c->eof && !c->closing && !c->paused && c->n_delays == 0) {
        conn_free(c);
        return 1;
    }
    return 0;
}

static void arm_delay(struct conn *c, const struct iom_delay *req);

static void process_requests(struct conn *c);

/* Framed mode: answer what can be answered, then arm the read timeout if
 * what is left over while reading is the start of a frame (whole requests
 * held back wait only while paused, when no read timeout runs). */
static void process_input(struct conn *c) {
    process_requests(c);
    if (!c->closing)
        watch_partial(c, !c->paused && evbuffer_get_length(bufferevent_get_input(c->bev)) != 0);
}

/* Hand Rust every complete request in the input buffer, as far as output
 * room allows, and act on what it returns. */
static void process_requests(struct conn *c) {
    const struct iom_callbacks *cb = c->srv->cb;
    struct evbuffer *in = bufferevent_get_input(c->bev), *out = bufferevent_get_output(c->bev);
    while (!c->closing) {
        size_t len = evbuffer_get_length(in), out_len = evbuffer_get_length(out);
        if (out_len >= IOM_OUTPUT_LIMIT) {
            pause_reading(c);
            return;
        }
        if (len == 0 || len < c->want) {
            resume_reading(c);
            return;
        }
        const uint8_t *bytes = evbuffer_pullup(in, (ev_ssize_t)len);
        if (bytes == NULL) {
            /* No memory for one contiguous copy of the input: its requests
             * cannot be read. Count an error, drop the input, and close as
             * after TOO_LARGE: the answers already queued go out first. */
            cb->count(IOM_ERROR, 1);
            evbuffer_drain(in, len);
            c->closing = 1;
            pause_reading(c);
            return;
        }
        struct iom_step st;
        memset(&st, 0, sizeof st);
        cb->process(c->rconn, bytes, len, IOM_OUTPUT_LIMIT - out_len, &st);
        evbuffer_drain(in, st.consumed);
        c->want = st.want;
        if (st.out_len)
            bufferevent_write(c->bev, st.out, st.out_len);
        /* libevent measures timeouts from the time it cached when this loop
         * iteration began, which can be earlier than the moment these
         * requests were read (even earlier than the client sent them, when
         * the iteration is long): a DELAY would then fire early. Refresh
         * the cache once per batch of DELAYs. */
        if (st.n_delays)
            event_base_update_cache_time(c->srv->base);
        for (size_t i = 0; i < st.n_delays; i++)
            arm_delay(c, &st.delays[i]);
        if (st.close) {
            c->closing = 1;
            pause_reading(c);
            return;
        }
        if (st.blocked && evbuffer_get_length(out) < IOM_OUTPUT_LIMIT) {
            pause_reading(c); /* waits for a DELAY to fire */
            return;
        }
        if (!st.blocked && st.consumed == 0) {
            resume_reading(c); /* defensive: Rust needs more input than `want` said */
            return;
        }
    }
}

static void delay_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct delay *d = arg;
    struct conn *c = d->c;
    if (d->prev)
        d->prev->next = d->next;
    else
        c->delays = d->next;
    if (d->next)
        d->next->prev = d->prev;
    c->n_delays--;
    if (c->closing == 2) {
        c->srv->cb->delay_drop(c->rconn, d->frame); /* our FIN is out: nothing more can be sent */
    } else {
        /* Also after TOO_LARGE (closing == 1): a DELAY read before it is
         * still answered, and the close waits for it (maybe_finish). */
        const uint8_t *out = NULL;
        size_t out_len = 0;
        c->srv->cb->delay_fire(c->rconn, d->frame, &out, &out_len);
        bufferevent_write(c->bev, out, out_len);
        if (c->paused && !c->closing)
            process_input(c);
    }
    event_free(d->ev);
    free(d);
    maybe_finish(c);
}

static void arm_delay(struct conn *c, const struct iom_delay *req) {
    struct delay *d = calloc(1, sizeof *d);
    struct event *ev = d ? evtimer_new(c->srv->base, delay_cb, d) : NULL;
    struct timeval tv = {(time_t)(req->micros / 1000000), (suseconds_t)(req->micros % 1000000)};
    if (!ev || evtimer_add(ev, &tv) != 0) {
        /* Out of memory: the request cannot be kept, so neither can the
         * promise to answer it; drop the connection rather than go silent. */
        if (ev)
            event_free(ev);
        free(d);
        c->srv->cb->delay_drop(c->rconn, req->frame);
        c->closing = 1;
        return;
    }
    d->c = c, d->ev = ev, d->frame = req->frame;
    d->next = c->delays;
    if (c->delays)
        c->delays->prev = d;
    c->delays = d;
    c->n_delays++;
}

static void read_cb(struct bufferevent *bev, void *arg) {
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->closing) {
        evbuffer_drain(in, evbuffer_get_length(in)); /* lingering after TOO_LARGE */
        return;
    }
    if (c->srv->framed) {
        process_input(c);
        maybe_finish(c);
        return;
    }
    /* Raw mode: the seed's echo. Move whatever arrived to the output. */
    c->srv->cb->count(IOM_ANSWERED, 1);
    bufferevent_write_buffer(bev, in);
    if (evbuffer_get_length(bufferevent_get_output(bev)) >= IOM_OUTPUT_LIMIT)
        pause_reading(c);
}

static void write_cb(struct bufferevent *bev, void *arg) {
    struct conn *c = arg;
    (void)bev;
    if (c->paused && !c->closing) {
        if (c->srv->framed)
            process_input(c);
        else
            resume_reading(c);
    }
    maybe_finish(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
    struct conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_ERROR) {
        conn_free(c); /* reset, broken pipe: nobody left to answer */
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        /* A frame stopped arriving, or answers stopped leaving: close. */
        c->srv->cb->count((what & BEV_EVENT_WRITING) ? IOM_WRITE_TIMEOUT : IOM_PARTIAL_FRAME_TIMEOUT, 1);
        conn_free(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* The peer shut its side. Answer what it sent (a partial frame is
         * dropped), then close once the output and every DELAY are done. */
        c->eof = 1;
        if (c->closing == 2) {
            conn_free(c);
            return;
        }
        if (c->srv->framed && !c->closing)
            process_input(c);
        maybe_finish(c);
    }
}

/* Byte counters for STATS: every byte added to an input buffer came from
 * the socket; every byte removed from an output buffer went to it. */
static void count_in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    (void)buf;
    if (info->n_added)
        ((const struct iom_callbacks *)arg)->count(IOM_READ, info->n_added);
}

static void count_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    (void)buf;
    if (info->n_deleted)
        ((const struct iom_callbacks *)arg)->count(IOM_WROTE, info->n_deleted);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len, void *arg) {
    (void)l, (void)addr, (void)len;
    struct server *s = arg;
    if (!s->cb->admit(s->cb->ctx)) { /* past --max-connections: refused, counted by Rust */
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = c ? bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        close(fd);
        s->cb->accept_error(s->cb->ctx, ENOMEM);
        return;
    }
    c->srv = s, c->bev = bev;
    c->rconn = s->cb->conn_open(s->cb->ctx);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    evbuffer_add_cb(bufferevent_get_input(bev), count_in_cb, (void *)s->cb);
    evbuffer_add_cb(bufferevent_get_output(bev), count_out_cb, (void *)s->cb);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    /* The write callback comes once the output is at or below the low
     * watermark: below IOM_RESUME_BELOW. */
    bufferevent_setwatermark(bev, EV_WRITE, IOM_RESUME_BELOW - 1, 0);
    bufferevent_set_max_single_read(bev, IOM_READ_ROOM);
    bufferevent_set_timeouts(bev, NULL, &s->write_tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    evconnlistener_enable(((struct server *)arg)->listener);
}

/* accept() failed with something other than EAGAIN/EINTR/ECONNABORTED. Out
 * of descriptors or memory: stop accepting for IOM_ACCEPT_PAUSE_MS instead of
 * spinning on a listener that stays readable. */
static void accept_error_cb(struct evconnlistener *l, void *arg) {
    struct server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (s->cb->accept_error(s->cb->ctx, err)) {
        struct timeval tv = ms_timeval(IOM_ACCEPT_PAUSE_MS);
        evconnlistener_disable(l);
        if (evtimer_add(s->backoff, &tv) != 0)
            evconnlistener_enable(l);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        return;
    event_base_loopbreak(arg);
}

/* Serve `listen_fd` (listening, nonblocking; closed on return) until
 * `wake_fd` (an eventfd or pipe) becomes readable, closing connections
 * whose frame or writes stall for the timeouts given (milliseconds).
 * Returns NULL, or what failed during setup. */
const char *iom_ev_run(int listen_fd, int wake_fd, int framed, long partial_frame_timeout_ms, long write_timeout_ms,
                       const struct iom_callbacks *cb) {
    struct server s;
    memset(&s, 0, sizeof s);
    s.cb = cb, s.framed = framed;
    s.partial_tv = ms_timeval(partial_frame_timeout_ms), s.write_tv = ms_timeval(write_timeout_ms);
    const char *err = NULL;
    /* EVENT_BASE_FLAG_PRECISE_TIMER: by default libevent 2.1 keeps time with
     * CLOCK_MONOTONIC_COARSE (one tick, often 4 ms, of resolution), so a
     * 1 ms DELAY timer could fire before 1 ms had really passed. The
     * precise clock costs a little per loop iteration and keeps DELAY's
     * promise of "no earlier than". */
    struct event_config *cfg = event_config_new();
    if (cfg)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    s.base = cfg ? event_base_new_with_config(cfg) : NULL;
    if (cfg)
        event_config_free(cfg);
    if (!s.base)
        err = "event_base_new failed";
    else if (!(s.wake = event_new(s.base, wake_fd, EV_READ | EV_PERSIST, wake_cb, s.base)) || event_add(s.wake, NULL))
        err = "cannot watch the shutdown eventfd";
    else if (!(s.backoff = evtimer_new(s.base, backoff_cb, &s)))
        err = "evtimer_new failed";
    /* backlog 0: the socket is already listening with our backlog; -1
     * would make libevent call listen() again with 128. */
    else if (!(s.listener = evconnlistener_new(s.base, accept_cb, &s, LEV_OPT_CLOSE_ON_FREE, 0, listen_fd)))
        err = "evconnlistener_new failed";
    if (!err) {
        evconnlistener_set_error_cb(s.listener, accept_error_cb);
        if (event_base_dispatch(s.base) < 0)
            err = "event_base_dispatch failed";
    } else if (!s.listener) {
        close(listen_fd);
    }
    while (s.conns)
        conn_free(s.conns);
    if (s.listener)
        evconnlistener_free(s.listener);
    if (s.backoff)
        event_free(s.backoff);
    if (s.wake)
        event_free(s.wake);
    if (s.base)
        event_base_free(s.base);
    return err;
}
