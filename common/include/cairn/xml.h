/*
 * xml.h — a small XML writer for S3 response bodies.
 *
 * Writes straight into a cairn_buf_t, compactly (no indentation, no newlines
 * between elements), the way S3 does:
 *
 *   cairn_xml_begin(b);
 *   cairn_xml_open_ns(b, "ListAllMyBucketsResult", CAIRN_XML_S3_NS);
 *   cairn_xml_elem(b, "Name", name, name_len);
 *   cairn_xml_elemf(b, "Size", "%" PRIu64, size);
 *   cairn_xml_close(b, "ListAllMyBucketsResult");
 *
 * Tag names and the namespace are written verbatim: they are the caller's
 * constants, never client data. Text is always escaped (cairn_xml_escape):
 *
 * - & < > " ' become &amp; &lt; &gt; &quot; &apos;.
 * - Control characters U+0001-U+001F other than tab and LF, and the NUL byte,
 *   become numeric references (&#x1; ... &#x1F;, &#x0;). XML 1.0 forbids most
 *   of them even as references; S3 emits them this way for keys that contain
 *   them, and the S3 clients we target accept it, so we do the same rather
 *   than lose the character. CR becomes &#xD; (legal), so a parser's
 *   line-end normalisation cannot turn it into LF. U+FFFE and U+FFFF, also not
 *   XML characters, are written as &#xFFFE; and &#xFFFF; for the same reason.
 * - Invalid UTF-8 (stray continuation bytes, truncated or overlong sequences,
 *   UTF-16 surrogates, code points above U+10FFFF, bytes F5-FF) is replaced
 *   byte by byte: each byte that does not start a valid sequence becomes one
 *   U+FFFD. The output is therefore always valid UTF-8.
 *
 * Nothing here fails: the buffer grows (allocation failure aborts).
 * Escaping is O(len); runs of bytes that need no change are copied at once.
 */
#ifndef CAIRN_XML_H
#define CAIRN_XML_H

#include <stddef.h>

#include "cairn/buf.h"

#define CAIRN_XML_S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Append the declaration: <?xml version="1.0" encoding="UTF-8"?> and a newline. */
void cairn_xml_begin(cairn_buf_t *b);

/* Append <tag>. */
void cairn_xml_open(cairn_buf_t *b, const char *tag);

/* Append <tag xmlns="ns">. */
void cairn_xml_open_ns(cairn_buf_t *b, const char *tag, const char *ns);

/* Append </tag>. Nesting is the caller's business; nothing is checked. */
void cairn_xml_close(cairn_buf_t *b, const char *tag);

/* Append <tag>escaped text</tag>. text need not be NUL-terminated; len may be 0 (<tag></tag>). */
void cairn_xml_elem(cairn_buf_t *b, const char *tag, const char *text, size_t len);

/* As cairn_xml_elem, with printf-formatted text (escaped after formatting). */
void cairn_xml_elemf(cairn_buf_t *b, const char *tag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append text escaped as described at the top of this file. */
void cairn_xml_escape(cairn_buf_t *b, const char *text, size_t len);

#endif
