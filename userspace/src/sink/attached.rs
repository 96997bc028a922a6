//! The human sinks' attached block: `attached` messages are held while programs attach and
//! printed as one block once attaching is over (the first record, map dump, flush or other
//! message), per object with its targets grouped by kind. Errors and the kernel line are
//! printed as they come; `decode` lines wait behind the block.

use std::io::{self, Write};

use super::human;
use crate::message::Message;

/// One attached program.
struct Attach {
    object: String,
    kind: String,
    target: String,
}

/// The attached programs not printed yet, and the lines waiting behind them.
#[derive(Default)]
pub struct AttachBlock {
    attached: Vec<Attach>,
    held: Vec<String>,
}

impl AttachBlock {
    /// Takes `m` when it belongs to the block (an `attached` line, or a `decode` line while
    /// the block is open); prints the block first when `m` ends the attach phase. True
    /// when `m` was taken.
    pub fn hold(&mut self, m: &Message<'_>, diag: &mut impl Write) -> io::Result<bool> {
        match *m {
            Message::Attached {
                object,
                kind,
                target,
                ..
            } => {
                self.attached.push(Attach {
                    object: object.to_owned(),
                    kind: kind.to_owned(),
                    target: target.to_owned(),
                });
                Ok(true)
            }
            Message::Decode { .. } if !self.attached.is_empty() => {
                self.held.extend(human(m));
                Ok(true)
            }
            Message::Error { .. } | Message::Kernel(_) | Message::Decode { .. } => Ok(false),
            _ => self.end(diag).map(|()| false),
        }
    }

    /// Prints the block and the lines held behind it (nothing when empty).
    pub fn end(&mut self, diag: &mut impl Write) -> io::Result<()> {
        if !self.attached.is_empty() {
            writeln!(diag, "{}", self.text())?;
            self.attached.clear();
        }
        for line in self.held.drain(..) {
            writeln!(diag, "{line}")?;
        }
        Ok(())
    }

    /// `loader: attached N programs:` then `  OBJECT  KIND TARGET, TARGET; KIND TARGET`.
    fn text(&self) -> String {
        /// Per kind, its targets.
        type Kinds<'a> = Vec<(&'a str, Vec<&'a str>)>;
        let width = self
            .attached
            .iter()
            .map(|a| a.object.len())
            .max()
            .unwrap_or(0);
        let mut objects: Vec<(&str, Kinds<'_>)> = Vec::new();
        for a in &self.attached {
            let i = match objects.iter().position(|(o, _)| *o == a.object) {
                Some(i) => i,
                None => {
                    objects.push((&a.object, Vec::new()));
                    objects.len() - 1
                }
            };
            let kinds = &mut objects[i].1;
            match kinds.iter_mut().find(|(k, _)| *k == a.kind) {
                Some((_, targets)) => targets.push(&a.target),
                None => kinds.push((&a.kind, vec![&a.target])),
            }
        }
        let n = self.attached.len();
        let mut text = format!(
            "loader: attached {n} program{}:",
            if n == 1 { "" } else { "s" }
        );
        for (object, kinds) in objects {
            let list: Vec<String> = kinds
                .iter()
                .map(|(k, targets)| format!("{k} {}", targets.join(", ")))
                .collect();
            text.push_str(&format!("\n  {object:<width$}  {}", list.join("; ")));
        }
        text
    }
}
