// libpng reports errors by longjmp, which must not cross Swift frames, so the whole read runs in
// these two C functions: Swift sees only a status and a message. No decoding happens here; libpng
// does it all.
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[200];
} lethe_png_source;

static void lethe_png_read(png_structp png, png_bytep out, size_t count) {
    lethe_png_source *source = (lethe_png_source *)png_get_io_ptr(png);
    if (count > source->size - source->offset) png_error(png, "the file ends inside the image data");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

static void lethe_png_fail(png_structp png, png_const_charp message) {
    lethe_png_source *source = (lethe_png_source *)png_get_error_ptr(png);
    snprintf(source->message, sizeof source->message, "%s", message);
    png_longjmp(png, 1);
}

static void lethe_png_warn(png_structp png, png_const_charp message) { (void)png; (void)message; }

/// Reads the header of the PNG in `data`. Returns 0 and fills the outputs, or -1 (libpng
/// refused the file) or -2 (larger than `max_pixels`) with `source->message` set. `channels`: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (after expanding
/// palettes and transparency); `depth`: 8 or 16 (lower depths are expanded to 8).
/// With `pixels` non-NULL it also decodes the image there, row-major, `channels` samples a pixel,
/// 16-bit samples as native-endian uint16; `pixels_size` is that buffer's size in bytes.
static inline int lethe_png_decode(lethe_png_source *source, unsigned *width, unsigned *height,
                                   int *channels, int *depth, size_t max_pixels, unsigned char *pixels,
                                   size_t pixels_size) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, source, lethe_png_fail, lethe_png_warn);
    if (!png) { snprintf(source->message, sizeof source->message, "libpng could not start"); return -1; }
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        if (!source->message[0]) snprintf(source->message, sizeof source->message, "libpng failed");
        return -1;
    }
    source->offset = 0;
    png_set_read_fn(png, source, lethe_png_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w == 0 || h == 0 || (size_t)w * (size_t)h > max_pixels) {
        snprintf(source->message, sizeof source->message, "the image is %ux%u, over the limit of %zu pixels", w, h, max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return -2;
    }
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (png_get_bit_depth(png, info) == 16) png_set_swap(png); // PNG stores big-endian; hand over native order
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    *width = w;
    *height = h;
    *channels = png_get_channels(png, info);
    *depth = png_get_bit_depth(png, info);
    if (pixels) {
        size_t stride = png_get_rowbytes(png, info);
        // The buffer was sized from an earlier header read; refuse a file that changed since.
        if (stride * (size_t)h > pixels_size) png_error(png, "the image changed while it was read");
        rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
        if (!rows) png_error(png, "out of memory");
        for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + y * stride;
        png_read_image(png, rows);
        png_read_end(png, NULL);
        free(rows);
        rows = NULL;
    }
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}
