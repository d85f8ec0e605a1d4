/*
 * scctl config-template [FILE]: the commented configuration of one site,
 * every key of the configuration table with its default (config.h). The
 * build writes it into the packages (site.env.example), so the example
 * cannot drift from the keys the programs read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scctl.h"

int scctl_config_template(struct scctl *ctx, int argc, char **argv)
{
	const char *path = NULL;
	FILE *out = stdout;
	int rc = SCCTL_FAIL;

	(void)ctx;
	for (int i = 1; i < argc; i++) {
		if (path != NULL || argv[i][0] == '-') {
			scctl_error("usage", "config-template takes one FILE at most, got \"%s\"",
				    argv[i]);
			return SCCTL_USAGE;
		}
		path = argv[i];
	}
	if (path != NULL) {
		out = fopen(path, "w");
		if (out == NULL) {
			scctl_error("config-template", "cannot write %s: %s", path, strerror(errno));
			return SCCTL_FAIL;
		}
	}
	config_template(out);
	if (ferror(out)) {
		scctl_error("config-template", "cannot write %s", path ? path : "standard output");
		goto out;
	}
	rc = SCCTL_OK;
out:
	if (path != NULL && fclose(out) != 0 && rc == SCCTL_OK) {
		scctl_error("config-template", "cannot write %s: %s", path, strerror(errno));
		rc = SCCTL_FAIL;
	}
	return rc;
}
