/*
 * The environment file tests/run.sh writes for each run of check_e2e
 * (tests/e2e/ENV.md): NAME='value' lines, loaded into this process's
 * environment so that one suite can be rerun by hand.
 */
#ifndef MDM_E2E_ENV_H
#define MDM_E2E_ENV_H

/*
 * Sets every variable of the file at path (setenv, overwriting: the file
 * describes the stack the suites run against).  Returns 1 on success; 0,
 * with the file, line and rule on stderr and nothing set, when the file
 * cannot be read or any line is malformed.
 */
int e2e_env_load(const char *path) __attribute__((warn_unused_result));

#endif
