//! Secrets the CLI reads from standard input instead of its arguments, which land in shell history and
//! `/proc/*/cmdline`: one line from a pipe, or a prompt without echo on a terminal.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use llm_gateway::manage::Secret;
use zeroize::Zeroizing;

/// Longest line accepted from a pipe; keys and secrets are a few hundred bytes at most.
const MAX_LINE: u64 = 16 * 1024;

/// Reads `what` (e.g. "API key") from standard input: a hidden prompt on a terminal, else the first line of the
/// pipe, trimmed. `example` shows the piped form in the error for an empty input.
pub fn secret_from_stdin(what: &str, example: &str) -> Result<Secret> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(format!("{what} (input hidden): "))
                .with_context(|| format!("cannot read the {what} from the terminal"))?,
        )
    } else {
        first_line(stdin.lock()).with_context(|| format!("cannot read the {what} from standard input"))?
    };
    let value = text.trim();
    if value.is_empty() {
        bail!("no {what} on standard input; pipe it in, e.g. `{example}`, or pass it as an option (kept for scripts)");
    }
    Ok(Secret::new(value))
}

/// The first line of `input` (without its line end), refusing one longer than [`MAX_LINE`].
fn first_line(input: impl BufRead) -> Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    let read = input.take(MAX_LINE + 1).read_line(&mut line)?;
    if read as u64 > MAX_LINE {
        bail!("the first line is longer than {MAX_LINE} bytes");
    }
    Ok(line)
}
