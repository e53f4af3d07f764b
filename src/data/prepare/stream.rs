//! The reader thread: decodes the input files in order and hands their documents on through
//! a bounded channel, so reading and decompression overlap tokenization.

use std::sync::mpsc::{sync_channel, SyncSender};

use super::BATCH_BYTES;
use crate::data::inputs::{read_docs, Columns, InputFile, RawDoc, ReadStats};
use crate::data::DataError;

/// Batches queued between the reader and the tokenizer. Two keep the tokenizer fed across a
/// slow stretch of reading (a large row group, a gzip member boundary) without holding more
/// than 2 x `BATCH_BYTES` of extra text.
pub(super) const IN_FLIGHT: usize = 2;

/// What the reader reports, in input order.
pub(super) enum Event {
    /// Documents of `files[file]`; `disk_pos` is how far into that file (bytes on disk)
    /// reading had got.
    Batch {
        file: usize,
        docs: Vec<RawDoc>,
        disk_pos: u64,
    },
    /// `files[file]` has been read completely.
    FileDone { file: usize, stats: ReadStats },
}

/// Reads `files` on a thread of its own and calls `consume` with every event, in order, on
/// this thread. The first error (the reader's or `consume`'s) stops both and is returned.
pub(super) fn stream_files(
    files: &[InputFile],
    columns: &Columns,
    mut consume: impl FnMut(Event) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let (tx, rx) = sync_channel::<Result<Event, DataError>>(IN_FLIGHT);
    std::thread::scope(|scope| {
        scope.spawn(move || read_all(files, columns, &tx));
        // Returning early drops the receiver: the reader's next send fails and it stops.
        for event in rx {
            consume(event?)?;
        }
        Ok(())
    })
}

/// Sending failed: the consumer has stopped (with an error of its own, which is the one
/// reported), so the reader stops too.
struct ConsumerGone;

fn read_all(files: &[InputFile], columns: &Columns, tx: &SyncSender<Result<Event, DataError>>) {
    for (index, file) in files.iter().enumerate() {
        match read_one(index, file, columns, tx) {
            Ok(Ok(())) => {}
            Ok(Err(ConsumerGone)) => return,
            Err(e) => {
                // If the consumer is gone there is nobody left to tell.
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

/// Reads one file: `Err` is a read error to report, `Ok(Err(ConsumerGone))` a quiet stop.
fn read_one(
    index: usize,
    file: &InputFile,
    columns: &Columns,
    tx: &SyncSender<Result<Event, DataError>>,
) -> Result<Result<(), ConsumerGone>, DataError> {
    let mut gone = false;
    let result = read_docs(file, columns, BATCH_BYTES, |batch| {
        let event = Event::Batch {
            file: index,
            docs: batch.docs,
            disk_pos: batch.disk_pos,
        };
        if tx.send(Ok(event)).is_err() {
            gone = true;
            // Any error stops the reading; `gone` says it was this one, not bad input.
            return Err(DataError::InvalidArgument(
                "prepare stopped reading".to_string(),
            ));
        }
        Ok(())
    });
    if gone {
        return Ok(Err(ConsumerGone));
    }
    let stats = result?;
    let done = Event::FileDone { file: index, stats };
    Ok(tx.send(Ok(done)).map_err(|_| ConsumerGone))
}
