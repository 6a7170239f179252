// MARK: - Interrupt flag for interactive commands

#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>

#include "hone_signals.h"

static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int signal_number) {
    (void)signal_number;
    interrupted = 1;
}

void hk_interrupt_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: a read waiting for input returns, so Ctrl-C at the prompt ends the chat
    sigaction(SIGINT, &action, NULL);
}

int hk_interrupt_pending(void) { return interrupted != 0; }

void hk_interrupt_clear(void) { interrupted = 0; }
