/*
 * s3_error.c — every S3 error answer is built here: code -> HTTP status,
 * and the XML body with the request id that also appears in the log line.
 */
#include <stdarg.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/meta_mpu.h"
#include "cairn/xml.h"
#include "gw.h"
#include "s3_ext.h"

static const struct {
    const char *code;
    int status;
    const char *message;
} errors[] = {
    {"AccessDenied", 403, "Access Denied"},
    {"BadDigest", 400, "The Content-MD5 you specified did not match what we received."},
    {"BucketAlreadyExists", 409, "The requested bucket name is not available."},
    {"BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it."},
    {"BucketNotEmpty", 409, "The bucket you tried to delete is not empty"},
    {"EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size."},
    {"IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
    {"InternalError", 500, "We encountered an internal error. Please try again."},
    {"InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."},
    {"InvalidArgument", 400, "Invalid Argument"},
    {"InvalidBucketName", 400, "The specified bucket is not valid."},
    {"InvalidDigest", 400, "The Content-MD5 you specified is not valid."},
    {"InvalidRange", 416, "The requested range is not satisfiable"},
    {"InvalidPartNumber", 416, "The requested partnumber is not satisfiable"},
    {"InvalidRequest", 400, "Invalid Request"},
    {"InvalidURI", 400, "Couldn't parse the specified URI."},
    {"KeyTooLongError", 400, "Your key is too long."},
    {"MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema."},
    {"MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."},
    {"MethodNotAllowed", 405, "The specified method is not allowed against this resource."},
    {"MissingContentLength", 411, "You must provide the Content-Length HTTP header."},
    {"NoSuchBucket", 404, "The specified bucket does not exist"},
    {"NoSuchKey", 404, "The specified key does not exist."},
    {"NotImplemented", 501, "A header you provided implies functionality that is not implemented."},
    {"RequestTimeTooSkewed", 403, "The difference between the request time and the current time is too large."},
    {"ServiceUnavailable", 503, "Please reduce your request rate."},
    {"SignatureDoesNotMatch", 403,
     "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
    {"AuthorizationHeaderMalformed", 400, "The authorization header is malformed."},
    {"AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter."},
    {"XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed."},
    /* multipart, conditional requests, copy, batch delete, configurations (s3_ext.h) */
    {"NoSuchUpload", 404, "The specified upload does not exist."},
    {"InvalidPart", 400, "One or more of the specified parts could not be found."},
    {"InvalidPartOrder", 400, "The list of parts was not in ascending order."},
    {"EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."},
    {"PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"},
    {"NoSuchVersion", 404, "The specified version does not exist."},
    {"NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"},
    {"NoSuchBucketPolicy", 404, "The bucket policy does not exist"},
    {"NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"},
    {"NoSuchTagSet", 404, "The TagSet does not exist"},
    {"NoSuchWebsiteConfiguration", 404, "The specified bucket does not have a website configuration"},
    {"ServerSideEncryptionConfigurationNotFoundError", 404, "The server side encryption configuration was not found"},
    {"ReplicationConfigurationNotFoundError", 404, "The replication configuration was not found"},
    {"ObjectLockConfigurationNotFoundError", 404, "Object Lock configuration does not exist for this bucket"},
    {"OwnershipControlsNotFoundError", 404, "The bucket ownership controls were not found"},
    {"NoSuchPublicAccessBlockConfiguration", 404, "The public access block configuration was not found"},
    {"SlowDown", 503, "Please reduce your request rate."},
    {"RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size."},
};

static int find(const char *code)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        if (strcmp(errors[i].code, code) == 0)
            return (int)i;
    return -1;
}

int s3_error_status(const char *code)
{
    int i = find(code);
    return i < 0 ? 500 : errors[i].status;
}

void s3_error(gw_job_t *job, const char *code, const char *fmt, ...)
{
    int i = find(code);
    job->err_code = i < 0 ? "InternalError" : errors[i].code;
    job->status = i < 0 ? 500 : errors[i].status;
    free(job->err_msg);
    job->err_msg = NULL;
    if (fmt && fmt[0]) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&job->err_msg, fmt, ap) < 0)
            job->err_msg = NULL;
        va_end(ap);
    }
}

void s3_error_from(gw_job_t *job, int err)
{
    switch (err) {
    case CAIRN_EBUCKET: s3_error(job, "NoSuchBucket", NULL); break;
    case CAIRN_ENOTFOUND: s3_error(job, "NoSuchKey", NULL); break;
    case CAIRN_EOWNED: s3_error(job, "BucketAlreadyOwnedByYou", NULL); break;
    case CAIRN_EEXIST: s3_error(job, "BucketAlreadyExists", NULL); break;
    case CAIRN_ENOTEMPTY: s3_error(job, "BucketNotEmpty", NULL); break;
    case CAIRN_ENOSUCHUSER: s3_error(job, "InvalidAccessKeyId", NULL); break;
    case CAIRN_EINVAL: s3_error(job, "InvalidArgument", NULL); break;
    case CAIRN_EUNAVAIL:
    case CAIRN_ETIMEOUT: s3_error(job, "ServiceUnavailable", "Not enough of the cluster (storage nodes or metadata replicas) is reachable; try again."); break;
    case CAIRN_MPU_ENOUPLOAD: case CAIRN_MPU_EPART: case CAIRN_MPU_EORDER: case CAIRN_MPU_ESMALL:
    case CAIRN_MPU_EPRECOND: case CAIRN_MPU_ENOKEY: s3_mpu_error(job, err); break; /* s3_multipart.c */
    default: s3_error(job, "InternalError", NULL); break;
    }
}

void s3_error_render(gw_job_t *job)
{
    int i = find(job->err_code);
    const char *msg = job->err_msg ? job->err_msg : (i < 0 ? "" : errors[i].message);
    cairn_buf_t *b = &job->resp_body;
    cairn_buf_reset(b);
    cairn_xml_begin(b);
    cairn_xml_open(b, "Error");
    cairn_xml_elem(b, "Code", job->err_code, strlen(job->err_code));
    cairn_xml_elem(b, "Message", msg, strlen(msg));
    if (job->bucket[0])
        cairn_xml_elem(b, "BucketName", job->bucket, strlen(job->bucket));
    if (job->key)
        cairn_xml_elem(b, "Key", job->key, job->key_len);
    cairn_xml_elem(b, "Resource", job->path, job->path_len);
    cairn_xml_elem(b, "RequestId", job->req_id_hex, 16);
    cairn_xml_close(b, "Error");
}
