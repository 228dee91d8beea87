// An Emscripten JS library (linked with --js-library by wasm/CMakeLists.txt;
// build input only, not part of the package): libembind's static constructor
// registers every built-in type it knows (bind.cpp,
// __embind_register_native_and_builtin_types), and a cold start runs each
// registration's JS for the first time at instantiate. The bindings
// (wasm/bindings.cpp) use no 64-bit integer, wide string, emscripten::val or
// memory view, so those four kinds of registration are no-ops here: 23 of the
// 38 calls do nothing, and the glue drops the code that would have served
// those types (the UTF-16/UTF-32 decoders, the typed-array views, the BigInt
// converters). A binding that used one of these types anyway would fail its
// first call with embind's UnboundTypeError (tests/js/api.test.js calls every
// binding); it could never read memory as the wrong type.
mergeInto(LibraryManager.library, {
  _embind_register_bigint: function (primitiveType, name, size, minRange, maxRange) {},
  _embind_register_std_wstring: function (rawType, charSize, name) {},
  _embind_register_emval: function (rawType, name) {},
  _embind_register_memory_view: function (rawType, dataTypeIndex, name) {},
});
