/*
 * scctl [--config FILE] [--json] COMMAND ...: global options and the command
 * table. Everything a command does lives in its own file.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "scctl.h"

struct command {
	const char *name;
	scctl_command_fn run;
	const char *usage;  /* arguments and one line of help per form */
	bool no_config;     /* runs without loading the configuration */
};

static const struct command commands[] = {
	{"migrate", scctl_migrate,
	 "migrate\n"
	 "      bring the database to the current schema (safe to run twice)\n", false},
	{"import", scctl_import,
	 "import FILE.json\n"
	 "      load or update master data (contract section 3) in one transaction;\n"
	 "      FILE may be - for standard input\n", false},
	{"token", scctl_token,
	 "token create --role ROLE [--zone PROVINCE] [--partner ID] [--engineer ID]\n"
	 "      make an API token and print it (only) on stdout; ROLE is hq, province,\n"
	 "      dispatcher (both need --zone), partner (--partner) or engineer (--engineer)\n"
	 "  token revoke ID\n"
	 "      revoke a token by its id\n"
	 "  token list\n"
	 "      list tokens (never the tokens themselves)\n", false},
	{"queue", scctl_queue,
	 "queue PROVINCE [--state S] [--manual] [--limit N] [--cursor C]\n"
	 "      the province's tickets, newest first: state, mode, next SLA deadline,\n"
	 "      SLA risk, holder; S is open (default) or a ticket state, --manual is\n"
	 "      --state manual; N is 1 to 500 (default 50); C is the \"next\" of the\n"
	 "      page before (--json), or the cursor printed on stderr\n", false},
	{"ticket", scctl_ticket,
	 "ticket TICKET\n"
	 "      one ticket with its orders, SLA clocks and escalations\n", false},
	{"history", scctl_history,
	 "history TICKET\n"
	 "      everything that happened to the ticket in time order: requests, state\n"
	 "      changes, orders and their events, SLA clocks, warnings, breaches,\n"
	 "      escalations, feedback\n", false},
	{"engineers", scctl_engineers,
	 "engineers PROVINCE\n"
	 "      engineers based in or covering the province: state, load / capacity, skills\n", false},
	{"partners", scctl_partners,
	 "partners PROVINCE\n"
	 "      partners serving the province: load / capacity, certification, open orders there\n", false},
	{"assign", scctl_assign,
	 "assign TICKET --engineer ID|--partner ID [--mode onsite|remote|outsourced] [--reason R]\n"
	 "      offer a waiting (new, manual) or only offered ticket to this engineer or\n"
	 "      partner; an open offer is withdrawn (mode default: by the receiver's kind)\n", false},
	{"reassign", scctl_reassign,
	 "reassign TICKET --engineer ID|--partner ID [--mode M] [--reason R]\n"
	 "      the same, also when an order is accepted or in progress: that order is\n"
	 "      withdrawn (announced to its holder) and the ticket offered to the new one\n", false},
	{"cancel", scctl_cancel,
	 "cancel TICKET [--reason R]\n"
	 "      cancel an open ticket: its orders are withdrawn, its SLA clocks cancelled\n", false},
	{"pause", scctl_pause,
	 "pause TICKET [--reason TEXT]\n"
	 "      pause the ticket's SLA clocks while it waits on the customer\n", false},
	{"resume", scctl_resume,
	 "resume TICKET\n"
	 "      resume its SLA clocks; deadlines move by the paused calendar time\n", false},
	{"broker-auth", scctl_broker_auth,
	 "broker-auth --out DIR [--frontdesk NAME]...\n"
	 "      write the broker's password file, ACL file and a 0600 credentials file\n"
	 "      into DIR, one account per device, engineer, partner, front desk (default\n"
	 "      \"frontdesk\") and service; a re-run keeps existing passwords\n", false},
	/* Without configuration: the build runs it, whatever its environment. */
	{"config-template", scctl_config_template,
	 "config-template [FILE]\n"
	 "      print (or write to FILE) a commented site configuration: every key with\n"
	 "      its default, as installed in /etc/service-cloud/site.env.example\n", true},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fputs("usage: scctl [--config FILE] [--json] COMMAND ...\n"
	      "\n"
	      "options:\n"
	      "  --config FILE  read KEY=value settings from FILE (the environment wins)\n"
	      "  --json         print results as JSON instead of tables\n"
	      "  --help         show this help\n"
	      "\n"
	      "commands:\n", out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s", commands[i].usage);
	fputs("\nexit status:\n"
	      "  0  success (an empty list too)\n"
	      "  1  failure, the reason on stderr: not found (ticket, province, ...), refused\n"
	      "     (not open, in progress, no capacity, ...), bad configuration, or the\n"
	      "     database unreachable (\"cannot connect to the database\")\n"
	      "  2  bad usage: unknown command or flag, missing or malformed argument\n"
	      "\nconfiguration:\n", out);
	config_usage(out, "scctl");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	struct scctl ctx = {0};
	const struct command *cmd = NULL;
	const char *config_file = NULL;
	char err[512];
	int i = 1;
	int rc = SCCTL_USAGE;

	log_init("scctl");
	for (; i < argc && argv[i][0] == '-'; i++) {
		int m;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return SCCTL_OK;
		}
		if (scctl_common_flag(&ctx, argv[i]))
			continue;
		m = scctl_flag_value("usage", argc, argv, &i, "--config", &config_file);
		if (m < 0)
			return SCCTL_USAGE;
		if (m > 0)
			continue;
		scctl_error("usage", "unknown option \"%s\" (see scctl --help)", argv[i]);
		return SCCTL_USAGE;
	}
	if (i >= argc) {
		usage(stderr);
		return SCCTL_USAGE;
	}
	cmd = find_command(argv[i]);
	if (!cmd) {
		scctl_error("usage", "unknown command \"%s\" (see scctl --help)", argv[i]);
		return SCCTL_USAGE;
	}
	if (wants_help(argc - i, argv + i)) {
		printf("usage: scctl [--config FILE] [--json] %s", cmd->usage);
		return SCCTL_OK;
	}
	if (!cmd->no_config &&
	    config_load(&ctx.cfg, "scctl", config_file, err, sizeof(err)) < 0) {
		scctl_error("configuration", "%s", err);
		return SCCTL_FAIL;
	}
	log_set_level(ctx.cfg.log_level);
	rc = cmd->run(&ctx, argc - i, argv + i);
	config_free(&ctx.cfg);
	if (fflush(stdout) != 0 && rc == SCCTL_OK) {
		scctl_error("output", "cannot write to standard output");
		rc = SCCTL_FAIL;
	}
	return rc;
}
