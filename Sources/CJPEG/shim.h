// libjpeg reports errors through error_exit, which must not return and must not unwind Swift
// frames, so the read runs in this one C function with a setjmp; Swift sees a status and a
// message. libjpeg-turbo does all the decoding.
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 1];
} lethe_jpeg_error;

static void lethe_jpeg_fail(j_common_ptr info) {
    lethe_jpeg_error *error = (lethe_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

static void lethe_jpeg_quiet(j_common_ptr info) { (void)info; }

/// Warnings pass, except data ending early: libjpeg would fill the rest with gray, where PIL
/// refuses a truncated file, and a half-gray image is not a sample anyone meant to give.
static void lethe_jpeg_warn(j_common_ptr info, int level) {
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
        lethe_jpeg_error *error = (lethe_jpeg_error *)info->err;
        (*info->err->format_message)(info, error->message);
        longjmp(error->jump, 1);
    }
}

/// Reads the JPEG in `data`: 0 and the outputs filled, or -1 (libjpeg refused the file) or -2
/// (larger than `max_pixels`) with `message` (at least JMSG_LENGTH_MAX + 1 bytes) set. `channels` is 1 (grayscale) or 3 (RGB; YCbCr is converted by
/// libjpeg). With `pixels` non-NULL it also decodes the image there, row-major, 8-bit samples;
/// `pixels_size` is that buffer's size in bytes.
static inline int lethe_jpeg_decode(const unsigned char *data, size_t size, unsigned *width, unsigned *height,
                                    int *channels, size_t max_pixels, unsigned char *pixels, size_t pixels_size,
                                    char *message) {
    struct jpeg_decompress_struct info;
    lethe_jpeg_error error;
    memset(&error, 0, sizeof error);
    info.err = jpeg_std_error(&error.base);
    error.base.error_exit = lethe_jpeg_fail;
    error.base.output_message = lethe_jpeg_quiet;
    error.base.emit_message = lethe_jpeg_warn;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&info);
        strcpy(message, error.message[0] ? error.message : "libjpeg failed");
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&info);
        strcpy(message, "CMYK JPEG images are not supported (convert to RGB)");
        return -1;
    }
    info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if ((size_t)info.image_width * (size_t)info.image_height > max_pixels) {
        snprintf(message, JMSG_LENGTH_MAX, "the image is %ux%u, over the limit of %zu pixels",
                 info.image_width, info.image_height, max_pixels);
        jpeg_destroy_decompress(&info);
        return -2;
    }
    *width = info.image_width;
    *height = info.image_height;
    *channels = info.num_components == 1 ? 1 : 3;
    if (pixels) {
        jpeg_start_decompress(&info);
        size_t stride = (size_t)info.output_width * (size_t)info.output_components;
        // The buffer was sized from an earlier header read; refuse a file that changed since.
        if (stride * (size_t)info.output_height > pixels_size) {
            jpeg_destroy_decompress(&info);
            strcpy(message, "the image changed while it was read");
            return -1;
        }
        while (info.output_scanline < info.output_height) {
            JSAMPROW row = pixels + (size_t)info.output_scanline * stride;
            jpeg_read_scanlines(&info, &row, 1);
        }
        jpeg_finish_decompress(&info);
    }
    jpeg_destroy_decompress(&info);
    return 0;
}
