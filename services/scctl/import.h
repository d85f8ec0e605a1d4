#ifndef SC_SERVICES_SCCTL_IMPORT_H
#define SC_SERVICES_SCCTL_IMPORT_H

/*
 * scctl import, inside: the master-data file of contract section 3 is
 * checked whole in C (import_build.c, against the section tables of
 * import_sections.c) and turned into rows of text parameters, one row per
 * entry, in dependency order; import.c then upserts them in one transaction
 * and maps what the database refuses (foreign keys, time zones, references
 * in arrays) back to the entry.
 *
 * An entry is the whole record: a field left out takes its default (or
 * NULL), it does not keep the value the database had. That is what makes
 * importing the same file twice a no-op.
 */

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* The largest file import reads (contract: "over 64 MiB" is an error). */
#define IMPORT_MAX_FILE (64u * 1024 * 1024)

/* Most parameters of one upsert statement. */
#define IMPORT_MAX_PARAMS 16

enum import_type {
	IMPORT_ID,        /* identifier rule (domain_id_valid) */
	IMPORT_MODEL,     /* identifier, or "*" for every model */
	IMPORT_TEXT,      /* any string (IMPORT_NONEMPTY: not "") */
	IMPORT_NUM,       /* finite number, range per flags */
	IMPORT_INT,       /* integer, range per flags */
	IMPORT_BOOL,
	IMPORT_ENUM,      /* one of choices */
	IMPORT_DATE,      /* "YYYY-MM-DD" */
	IMPORT_TIMESTAMP, /* RFC 3339 */
	IMPORT_SKILLS,    /* {"skill": grade 1..4} -> jsonb */
	IMPORT_ID_LIST,   /* [id, ...] -> text[] */
	IMPORT_WEEKDAYS,  /* [1..7, ...] (ISO) -> int[] */
	IMPORT_DATE_LIST, /* ["YYYY-MM-DD", ...] -> date[] */
	IMPORT_HOURS,     /* "HH:MM-HH:MM" -> two parameters, start and end */
	IMPORT_METRIC,    /* metric name rule (domain_metric_name_valid) */
	IMPORT_TZ,        /* a time zone name; PostgreSQL decides (import.c) */
};

/* import_field.flags */
enum {
	IMPORT_REQUIRED = 1 << 0,
	IMPORT_KEY = 1 << 1,      /* part of the entry's identity (label, duplicates) */
	IMPORT_MIN = 1 << 2,      /* value >= min */
	IMPORT_MIN_EXCL = 1 << 3, /* value > min */
	IMPORT_MAX = 1 << 4,      /* value <= max */
	IMPORT_MAX_EXCL = 1 << 5, /* value < max */
	IMPORT_NONEMPTY = 1 << 6, /* text and lists: at least one character / element */
};

/* One field of an entry; each makes one parameter (IMPORT_HOURS two). */
struct import_field {
	const char *key;            /* JSON key, also the column name */
	enum import_type type;
	unsigned flags;
	double min, max;
	const char *const *choices; /* IMPORT_ENUM: NULL-terminated */
	const char *dflt;           /* parameter text when absent; NULL = SQL NULL */
	const char *dflt_from;      /* IMPORT_ID_LIST: absent = [value of this field] */
	const char *ref;            /* noun of what the value names ("site"), or NULL */
	/*
	 * NULL: a foreign key <table>_<key>_fkey checks the reference (if
	 * any). Otherwise the query that does, run before the insert: $1 =
	 * the parameter; it returns the first unknown value, or no row.
	 */
	const char *ref_sql;
};

/* One section of the file. */
struct import_section {
	const char *name;   /* "devices" */
	const char *table;  /* "device" */
	/* The upsert, parameters in field order; returns one row (inserted
	 * boolean) when it inserted or changed the row, none when unchanged. */
	const char *sql;
	const struct import_field *fields;
	size_t nfields;
	bool object;        /* an object of key -> value (settings), not an array */
	/* Rules across fields, on an entry whose fields are each valid:
	 * 0, or -1 with the reason in err. NULL: none. */
	int (*check)(const cJSON *entry, char *err, size_t errlen);
	/* Run after the section's rows: returns a message when the table as a
	 * whole breaks a rule, else no row. NULL: none. */
	const char *after_sql;
};

/* The sections, in dependency order (import_sections.c): what an entry
 * refers to is upserted before it. */
extern const struct import_section import_sections[];
extern const size_t import_nsections;

/* Index of the first parameter of fields[field] (IMPORT_HOURS takes two). */
int import_param_index(const struct import_section *s, size_t field);

/* Number of parameters of a section's upsert. */
int import_nparams(const struct import_section *s);

/* One entry, ready for the upsert. */
struct import_row {
	char *label;                       /* devices[3] (id "D0004") */
	char *params[IMPORT_MAX_PARAMS];   /* text values; NULL = SQL NULL */
	unsigned long given;               /* bit f: fields[f] was in the file */
};

struct import_rows {
	const struct import_section *section;
	bool present;           /* the file has this section */
	struct import_row *rows;
	size_t n;
};

/* The whole file, sections in dependency order. */
struct import_data {
	struct import_rows *sections;
	size_t nsections;
};

/*
 * Checks the parsed file (root object) against contract section 3 and
 * builds the rows. Returns the data (free with import_data_free) or NULL
 * with one line naming the first bad entry in err, e.g.
 * `devices[3] (id "D0004"): commissioned_on: must be a date YYYY-MM-DD`.
 */
struct import_data *import_build(const cJSON *root, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* import_data_free(NULL) does nothing. */
void import_data_free(struct import_data *d);

#endif
