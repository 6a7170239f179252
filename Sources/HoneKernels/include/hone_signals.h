// Ctrl-C for interactive commands: the handler only sets a flag (async-signal-safe); the chat loop polls it
// between tokens to stop the current answer instead of the program.
#ifndef HONE_SIGNALS_H
#define HONE_SIGNALS_H

#ifdef __cplusplus
extern "C" {
#endif

/// Installs a SIGINT handler that records the interrupt (no SA_RESTART, so a blocked read returns).
void hk_interrupt_install(void);
/// 1 if an interrupt arrived since the last clear.
int hk_interrupt_pending(void);
void hk_interrupt_clear(void);

#ifdef __cplusplus
}
#endif

#endif
