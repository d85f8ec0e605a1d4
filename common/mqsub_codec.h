#ifndef SC_COMMON_MQSUB_CODEC_H
#define SC_COMMON_MQSUB_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/*
 * MQTT 5 packets of a subscriber (mqsub.h), encoded and decoded without I/O,
 * so they can be unit-tested and fuzzed. Only what a subscriber needs:
 * it encodes CONNECT, SUBSCRIBE, PUBACK, PINGREQ and DISCONNECT, and decodes
 * what a broker sends a subscriber: CONNACK, PUBLISH, SUBACK, PINGRESP and
 * DISCONNECT. Every other packet type from the broker is an error.
 *
 * Decoding trusts nothing: every length is checked against the packet, and
 * a broker's packet that breaks the specification is reported as an error
 * (with a static reason), never read past. Properties are skipped by their
 * type; the few we use are returned.
 */

enum mqsub_type {
	MQSUB_CONNECT = 1,
	MQSUB_CONNACK = 2,
	MQSUB_PUBLISH = 3,
	MQSUB_PUBACK = 4,
	MQSUB_SUBSCRIBE = 8,
	MQSUB_SUBACK = 9,
	MQSUB_PINGREQ = 12,
	MQSUB_PINGRESP = 13,
	MQSUB_DISCONNECT = 14,
};

/* The fixed header is a type byte and a variable byte integer of 1..4 bytes. */
#define MQSUB_FIXED_HEADER_MAX 5
/* Largest value of a variable byte integer (and remaining length). */
#define MQSUB_VARINT_MAX 268435455u

/* What CONNECT carries. user and pass may be NULL. Clean start is always
 * off (a persistent session) and no will is sent. */
struct mqsub_connect_fields {
	const char *client_id;
	const char *user;
	const char *pass;
	uint16_t keepalive_s;
	uint32_t session_expiry_s;
	uint16_t receive_max;      /* 1..65535 */
	uint32_t max_packet;       /* Maximum Packet Size we accept, 1..MQSUB_VARINT_MAX + 5 */
};

/* One subscription: a topic filter and the QoS asked for (0 or 1). */
struct mqsub_filter {
	const char *filter;
	int qos;
};

/*
 * Encoders: each appends one packet to b. Return 0, or -1 when a field cannot
 * be encoded (a string over 65535 bytes or not UTF-8, a QoS other than 0 or 1,
 * packet id 0, an empty filter list) or b failed to grow; b may then hold a
 * partial packet, so reset it.
 */
int mqsub_encode_connect(struct strbuf *b, const struct mqsub_connect_fields *c)
	__attribute__((warn_unused_result));
/* All filters in one SUBSCRIBE. Retain Handling 1: retained messages are sent
 * only when the subscription is new, not again on every reconnect. */
int mqsub_encode_subscribe(struct strbuf *b, uint16_t packet_id,
			   const struct mqsub_filter *f, size_t n)
	__attribute__((warn_unused_result));
/* Reason Success, so the short form of two bytes after the fixed header. */
int mqsub_encode_puback(struct strbuf *b, uint16_t packet_id) __attribute__((warn_unused_result));
int mqsub_encode_pingreq(struct strbuf *b) __attribute__((warn_unused_result));
/* Reason Normal disconnection (the short form): the broker keeps the session. */
int mqsub_encode_disconnect(struct strbuf *b) __attribute__((warn_unused_result));

/*
 * Reads the fixed header at the start of the n bytes at p. Returns 1 with
 * *header_len (2..5) and *remaining set, 0 when n bytes do not yet hold the
 * whole fixed header, -1 when the remaining length is malformed (a fifth
 * byte). The packet is *header_len + *remaining bytes long.
 */
int mqsub_fixed_header(const uint8_t *p, size_t n, size_t *header_len, uint32_t *remaining)
	__attribute__((warn_unused_result));

/* One decoded packet. Pointers point into the packet given to mqsub_decode(). */
struct mqsub_packet {
	uint8_t type;              /* enum mqsub_type */
	uint8_t reason;            /* CONNACK, DISCONNECT (0 when omitted) */
	bool session_present;      /* CONNACK */
	int32_t server_keepalive;  /* CONNACK: Server Keep Alive, -1 when absent */
	uint16_t packet_id;        /* PUBLISH with QoS > 0, SUBACK */
	int qos;                   /* PUBLISH: 0, 1 or 2 */
	bool dup;                  /* PUBLISH */
	bool retain;               /* PUBLISH */
	const char *topic;         /* PUBLISH: NUL-terminated in place, valid UTF-8 */
	size_t topic_len;
	const uint8_t *payload;    /* PUBLISH: the payload; SUBACK: the reason codes */
	size_t payload_len;
	const char *reason_string; /* Reason String property (not terminated), NULL if absent */
	size_t reason_string_len;
	const char *error;         /* after -1: why, a static string */
};

/*
 * Decodes the whole packet of n bytes at p (fixed header included; n must be
 * exactly its length). Returns 0, or -1 with pk->error set when the packet is
 * malformed or of a type a broker does not send a subscriber. A PUBLISH's
 * topic is NUL-terminated in place: the byte after it (packet id or property
 * length, already decoded) is overwritten, hence p is not const.
 */
int mqsub_decode(uint8_t *p, size_t n, struct mqsub_packet *pk) __attribute__((warn_unused_result));

/* true when the n bytes at s are well-formed UTF-8 as MQTT wants it: no
 * overlong forms, no surrogates, nothing past U+10FFFF, no U+0000. */
bool mqsub_utf8_valid(const uint8_t *s, size_t n);

#endif
