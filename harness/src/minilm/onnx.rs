//! The part of ONNX's protobuf schema (`onnx/onnx.proto`, IR version 8) that quantproof reads:
//! a model's graph, its nodes and its initializers. The messages are declared with `prost`'s
//! derive, field numbers and types transcribed from `onnx.proto`; `prost` does the decoding
//! (fields not declared here are skipped, as protobuf allows).

use prost::Message;

/// `ModelProto`.
#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
}

/// `NodeProto`.
#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
}

/// `TensorProto` (data kept either in `raw_data`, little-endian, or in the typed fields).
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// `DataLocation`: 0 default (inside the file), 1 external.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `TensorProto.DataType.FLOAT`.
pub const FLOAT: i32 = 1;
/// `TensorProto.DataType.INT8`.
pub const INT8: i32 = 3;

impl TensorProto {
    /// The shape as `usize`s; `None` for a negative dimension.
    pub fn shape(&self) -> Option<Vec<usize>> {
        self.dims.iter().map(|&d| usize::try_from(d).ok()).collect()
    }

    fn elements(&self) -> Result<usize, String> {
        let shape =
            self.shape().ok_or_else(|| format!("initializer {}: negative dimension in {:?}", self.name, self.dims))?;
        shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("initializer {}: shape {:?} overflows", self.name, self.dims))
    }

    fn check_inline(&self) -> Result<(), String> {
        if self.data_location == 1 {
            return Err(format!(
                "initializer {} is stored outside the model file (external data is not supported)",
                self.name
            ));
        }
        Ok(())
    }

    /// The values of an INT8 tensor.
    pub fn int8(&self) -> Result<Vec<i8>, String> {
        self.check_inline()?;
        if self.data_type != INT8 {
            return Err(format!("initializer {}: data type {} is not INT8", self.name, self.data_type));
        }
        let n = self.elements()?;
        let v: Vec<i8> = if !self.raw_data.is_empty() {
            self.raw_data.iter().map(|&b| b as i8).collect()
        } else {
            // int32_data holds each INT8 value widened (onnx.proto).
            self.int32_data.iter().map(|&v| v as i8).collect()
        };
        if v.len() != n {
            return Err(format!("initializer {}: {} values for shape {:?}", self.name, v.len(), self.dims));
        }
        Ok(v)
    }

    /// The values of a FLOAT tensor.
    pub fn float(&self) -> Result<Vec<f32>, String> {
        self.check_inline()?;
        if self.data_type != FLOAT {
            return Err(format!("initializer {}: data type {} is not FLOAT", self.name, self.data_type));
        }
        let n = self.elements()?;
        let v: Vec<f32> = if !self.raw_data.is_empty() {
            if self.raw_data.len() % 4 != 0 {
                return Err(format!(
                    "initializer {}: {} raw bytes is not a whole number of floats",
                    self.name,
                    self.raw_data.len()
                ));
            }
            self.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else {
            self.float_data.clone()
        };
        if v.len() != n {
            return Err(format!("initializer {}: {} values for shape {:?}", self.name, v.len(), self.dims));
        }
        Ok(v)
    }
}

/// Decodes a model file's bytes.
pub fn decode(bytes: &[u8]) -> Result<ModelProto, String> {
    ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model (protobuf decoding failed: {e})"))
}
