//! The parts of the `cofferd` process that the library does not own: how the
//! command line is read, where the process's own lines go (text or JSON), and
//! how storage is opened at start (a bounded wait, one server per SQLite file).

pub mod args;
pub mod output;
pub mod startup;
