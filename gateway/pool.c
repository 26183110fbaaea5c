/*
 * pool.c — the worker threads. A FIFO of jobs under one mutex; each worker
 * pops a job, runs its step with its own connections, and posts the job back
 * to the loop thread that owns the request.
 */
#include "cairn/err.h"
#include "cairn/log.h"
#include "gw.h"

static void *worker_main(void *arg)
{
    gw_worker_t *w = arg;
    gw_t *gw = w->gw;
    for (;;) {
        pthread_mutex_lock(&gw->lock);
        while (gw->head == NULL && !gw->stopping)
            pthread_cond_wait(&gw->cond, &gw->lock);
        if (gw->stopping) {
            pthread_mutex_unlock(&gw->lock);
            break;
        }
        gw_job_t *job = gw->head;
        gw->head = job->next;
        if (gw->head == NULL)
            gw->tail = NULL;
        pthread_mutex_unlock(&gw->lock);

        job->next = NULL;
        job->step(w, job);
        h2o_multithread_send_message(&job->thread->done_receiver, &job->msg);
    }
    gw_worker_dispose(w);
    free(w);
    return NULL;
}

int gw_pool_start(gw_t *gw, int nworkers)
{
    pthread_mutex_init(&gw->lock, NULL);
    pthread_cond_init(&gw->cond, NULL);
    for (int i = 0; i < nworkers; i++) {
        gw_worker_t *w = cairn_malloc(sizeof *w);
        gw_worker_init(w, gw);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&w->tid, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            return -rc;
    }
    return 0;
}

void gw_pool_submit(gw_t *gw, gw_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&gw->lock);
    if (gw->tail)
        gw->tail->next = job;
    else
        gw->head = job;
    gw->tail = job;
    pthread_cond_signal(&gw->cond);
    pthread_mutex_unlock(&gw->lock);
}
