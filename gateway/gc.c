/*
 * gc.c — delayed removal of superseded versions' fragments.
 *
 * When a PUT or DELETE replaces a version, a GET that started a moment
 * earlier may still be reading the old version's fragments. Deleting them at
 * once would cut that GET short. So the old record is queued here and its
 * fragments are removed [gateway] gc_delay_ms later by one collector thread;
 * then the metadata tier's garbage list entry is cleared (GC_DONE). If the
 * gateway stops first, the entry stays on that list and the cluster's garbage
 * collection removes the fragments.
 *
 * Cost: one encoded record (~200 bytes) per pending version in memory.
 */
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "gw.h"

typedef struct gc_item_s {
    struct gc_item_s *next;
    int64_t due_ms;
    uint64_t req_id;
    cairn_buf_t rec;
} gc_item_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gc_item_t *head, *tail; /* FIFO; due times grow since the delay is fixed */
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL};

void gw_gc_defer(gw_t *gw, uint64_t req_id, const cairn_obj_rec_t *old)
{
    gc_item_t *it = cairn_calloc(1, sizeof *it);
    it->due_ms = cairn_now_ms() + gw->cfg.gc_delay_ms;
    it->req_id = req_id;
    cairn_buf_init(&it->rec);
    cairn_obj_rec_encode(old, &it->rec);
    pthread_mutex_lock(&q.lock);
    if (q.tail)
        q.tail->next = it;
    else
        q.head = it;
    q.tail = it;
    pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.lock);
}

static void *collector_main(void *arg)
{
    gw_worker_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&q.lock);
        while (q.head == NULL || q.head->due_ms > cairn_now_ms()) {
            if (q.head == NULL) {
                pthread_cond_wait(&q.cond, &q.lock);
            } else {
                int64_t wait = q.head->due_ms - cairn_now_ms();
                pthread_mutex_unlock(&q.lock);
                usleep((useconds_t)((wait > 100 ? 100 : wait > 0 ? wait : 1) * 1000));
                pthread_mutex_lock(&q.lock);
            }
        }
        gc_item_t *it = q.head;
        q.head = it->next;
        if (q.head == NULL)
            q.tail = NULL;
        pthread_mutex_unlock(&q.lock);

        cairn_obj_rec_t rec;
        if (cairn_obj_rec_decode(it->rec.base, it->rec.len, &rec) == 0 && gw_store_delete(w, it->req_id, &rec) == 0)
            cairn_meta_gc_done(&w->meta, it->req_id, rec.oid);
        cairn_buf_dispose(&it->rec);
        free(it);
    }
    return NULL;
}

int gw_gc_start(gw_t *gw)
{
    gw_worker_t *w = cairn_malloc(sizeof *w);
    gw_worker_init(w, gw);
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, collector_main, w);
    pthread_attr_destroy(&attr);
    return -rc;
}
