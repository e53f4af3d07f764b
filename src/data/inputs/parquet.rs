//! `.parquet` inputs through parquet's low-level column reader.
//!
//! Only the text (and source) columns are decoded, a page at a time, so memory is bounded by a
//! page and a batch, not by a row group. The record API would build a `Row` of every column
//! for every document; the column reader hands out the decoded strings directly.

use std::fs::File;
use std::path::Path;

use parquet::basic::Type as PhysicalType;
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::schema::types::SchemaDescriptor;

use super::{Batch, Batcher, Columns, InputFile, RawDoc, ReadStats, DEFAULT_SOURCE};
use crate::data::DataError;

/// Rows decoded per column-reader call: small enough that the text of one call stays a
/// fraction of a batch, large enough to amortize the call.
const ROWS_PER_READ: usize = 1024;

fn parquet_error(path: &Path, row: Option<u64>, message: impl Into<String>) -> DataError {
    DataError::Parquet {
        path: path.to_path_buf(),
        row,
        message: message.into(),
    }
}

/// A string column: its name, leaf index and whether it can hold nulls.
struct Leaf {
    name: String,
    index: usize,
    nullable: bool,
}

/// Finds the top-level string column `name`; the error lists the columns there are.
fn find_column(path: &Path, schema: &SchemaDescriptor, name: &str) -> Result<Leaf, DataError> {
    let found = schema
        .columns()
        .iter()
        .position(|c| c.path().parts() == [name]);
    let Some(index) = found else {
        let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        return Err(parquet_error(
            path,
            None,
            format!(
                "no column {name:?}; the file has columns {names:?} (choose one with \
                 --text-column / --source-column)"
            ),
        ));
    };
    let column = schema.column(index);
    if column.physical_type() != PhysicalType::BYTE_ARRAY {
        return Err(parquet_error(
            path,
            None,
            format!(
                "column {name:?} holds {} values, not strings",
                column.physical_type()
            ),
        ));
    }
    Ok(Leaf {
        name: name.to_string(),
        index,
        nullable: column.max_def_level() > 0,
    })
}

/// Reads one string column in steps, values lined up with rows (nulls as `None`).
struct StringColumn {
    reader: ColumnReaderImpl<ByteArrayType>,
    nullable: bool,
    values: Vec<ByteArray>,
    def_levels: Vec<i16>,
}

impl StringColumn {
    fn open(rg: &dyn RowGroupReader, leaf: &Leaf) -> Result<Self, ParquetError> {
        let reader = match rg.get_column_reader(leaf.index)? {
            ColumnReader::ByteArrayColumnReader(r) => r,
            // find_column() checked the physical type; this is the same check, failing softly.
            _ => return Err(ParquetError::General("not a string column".to_string())),
        };
        Ok(StringColumn {
            reader,
            nullable: leaf.nullable,
            values: Vec::new(),
            def_levels: Vec::new(),
        })
    }

    /// The next up to `max` rows: `Some(bytes)` or `None` for a null.
    fn next_rows(&mut self, max: usize) -> Result<Vec<Option<ByteArray>>, ParquetError> {
        self.values.clear();
        self.def_levels.clear();
        let defs = self.nullable.then_some(&mut self.def_levels);
        let (rows, _, _) = self
            .reader
            .read_records(max, defs, None, &mut self.values)?;
        if !self.nullable {
            return Ok(self.values.drain(..).map(Some).collect());
        }
        // Non-null values come packed; a definition level below the maximum marks a null.
        let mut values = self.values.drain(..);
        let out = self
            .def_levels
            .iter()
            .take(rows)
            .map(|&d| if d > 0 { values.next() } else { None })
            .collect();
        Ok(out)
    }
}

pub(super) fn read_parquet(
    file: &InputFile,
    columns: &Columns,
    batch_bytes: usize,
    sink: impl FnMut(Batch) -> Result<(), DataError>,
) -> Result<ReadStats, DataError> {
    let path = &file.path;
    let f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let reader = SerializedFileReader::new(f)
        .map_err(|e| parquet_error(path, None, format!("not a readable parquet file: {e}")))?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let text = find_column(path, schema, &columns.text)?;
    let source = match &columns.source {
        Some(name) => Some(find_column(path, schema, name)?),
        None => None,
    };
    let mut batcher = Batcher::new(batch_bytes, sink);
    let mut reader_pos = RowPosition::default();
    for rg_index in 0..meta.num_row_groups() {
        let rg_meta = meta.row_group(rg_index);
        let rg = reader.get_row_group(rg_index).map_err(|e| {
            parquet_error(
                path,
                Some(reader_pos.row),
                format!("row group {rg_index}: {e}"),
            )
        })?;
        reader_pos.start_group(rg_meta.num_rows().max(0) as u64, rg_meta.compressed_size());
        read_row_group(
            path,
            rg.as_ref(),
            &text,
            source.as_ref(),
            &mut reader_pos,
            &mut batcher,
        )?;
    }
    batcher.finish(file.disk_bytes)?;
    Ok(ReadStats::default())
}

/// Where reading is: the file's row number, and the compressed bytes of the row groups read so
/// far (interpolated within the current one) for progress.
#[derive(Default)]
struct RowPosition {
    row: u64,
    groups_bytes: u64,
    group_rows: u64,
    group_bytes: u64,
    group_row: u64,
}

impl RowPosition {
    fn start_group(&mut self, rows: u64, compressed_bytes: i64) {
        self.groups_bytes += self.group_bytes;
        self.group_rows = rows;
        self.group_bytes = compressed_bytes.max(0) as u64;
        self.group_row = 0;
    }

    fn advance(&mut self, rows: u64) {
        self.row += rows;
        self.group_row += rows;
    }

    fn disk_pos(&self) -> u64 {
        let within =
            self.group_bytes as f64 * self.group_row as f64 / self.group_rows.max(1) as f64;
        self.groups_bytes + within as u64
    }
}

fn read_row_group(
    path: &Path,
    rg: &dyn RowGroupReader,
    text: &Leaf,
    source: Option<&Leaf>,
    pos: &mut RowPosition,
    batcher: &mut Batcher<impl FnMut(Batch) -> Result<(), DataError>>,
) -> Result<(), DataError> {
    let at = |row: u64, e: ParquetError| {
        let message = format!("cannot decode the text/source columns (corrupt file?): {e}");
        parquet_error(path, Some(row), message)
    };
    let mut texts = StringColumn::open(rg, text).map_err(|e| at(pos.row, e))?;
    let mut sources = match source {
        Some(leaf) => Some(StringColumn::open(rg, leaf).map_err(|e| at(pos.row, e))?),
        None => None,
    };
    loop {
        let text_rows = texts.next_rows(ROWS_PER_READ).map_err(|e| at(pos.row, e))?;
        if text_rows.is_empty() {
            return Ok(());
        }
        let source_rows = match sources.as_mut() {
            Some(s) => Some(s.next_rows(text_rows.len()).map_err(|e| at(pos.row, e))?),
            None => None,
        };
        if source_rows
            .as_ref()
            .is_some_and(|s| s.len() != text_rows.len())
        {
            return Err(parquet_error(
                path,
                Some(pos.row),
                "the text and source columns hold different numbers of rows",
            ));
        }
        let n = text_rows.len() as u64;
        for (i, value) in text_rows.into_iter().enumerate() {
            let row = pos.row + i as u64;
            let source = source_rows.as_ref().and_then(|s| s[i].as_ref());
            let doc = to_doc(path, row, &text.name, value, source)?;
            batcher.push(doc, || pos.disk_pos())?;
        }
        pos.advance(n);
    }
}

fn to_doc(
    path: &Path,
    row: u64,
    text_column: &str,
    text: Option<ByteArray>,
    source: Option<&ByteArray>,
) -> Result<RawDoc, DataError> {
    let utf8 = |b: &ByteArray, what: &str| {
        std::str::from_utf8(b.data())
            .map(str::to_string)
            .map_err(|e| {
                parquet_error(
                    path,
                    Some(row),
                    format!("{what} is not valid UTF-8 (byte {})", e.valid_up_to()),
                )
            })
    };
    let text = text.ok_or_else(|| {
        parquet_error(
            path,
            Some(row),
            format!("the text column {text_column:?} is null"),
        )
    })?;
    let text = utf8(&text, "text")?;
    let source = match source {
        Some(s) if !s.data().is_empty() => utf8(s, "source")?,
        _ => DEFAULT_SOURCE.to_string(),
    };
    Ok(RawDoc { text, source })
}
